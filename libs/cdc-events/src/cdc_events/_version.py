"""``source_version``: a change's place in its source's history, as text whose plain byte order
is the order of the changes of one row.

Every sink that keeps the latest state of a row (a version-guarded DynamoDB item, a PostgreSQL
row updated ``WHERE version < :new``, the newest row per key in a Parquet report) must not let
an older change overwrite a newer one. The Kafka offset cannot say which is newer: a dead-letter
replay re-produces the original bytes at a new offset, and a re-created topic starts again from
0. The source's position can, read with care:

* PostgreSQL: ``source.lsn`` alone is not an order. Transactions interleave in the WAL and are
  emitted in commit order, and a transaction open across the snapshot's consistent point has
  change LSNs *below* the snapshot's LSN although it committed after it. Debezium's
  ``source.sequence`` ``["<lastCommitLsn>", "<lsn>"]`` adds the commit LSN of the transaction it
  processed before this one (``Source.commit_lsn``), which grows in commit order and is the same
  for every change of one transaction; it is null for snapshot reads and for the first
  transaction streamed after the snapshot. The version is ``p``, the class (``0`` a snapshot
  read, ``1`` streamed: streaming starts at the snapshot's consistent point, so everything it
  emits committed after every snapshot read), the commit key (``commit_lsn``, or the change's
  own LSN where it is null or there is no ``sequence``), then the change's LSN.
* MySQL: the binlog is written in commit order. ``m``, the class, the binlog file's number
  (``mysql-bin.000003`` -> 3, so ``000010`` follows ``000009`` whatever the digits), ``pos``,
  ``row``.
* Anything else: ``t``, the source's commit time in ms, the Kafka partition and offset (only as
  good as the clock, and a replay at a new offset sorts after its original).

Each number is zero-padded to 20 digits, the width of an unsigned 64-bit value, so the versions
of one form have one length and compare as text (PostgreSQL ``COLLATE "C"``, a DynamoDB ``S``
attribute in a condition expression, a Parquet string column). Versions of different forms do
not compare meaningfully (one row's changes all come through one connector, so one form).
"""

from __future__ import annotations

from typing import Final

from cdc_events._fields import SEQUENCE_CONNECTORS
from cdc_events._model import BinlogPosition, ChangeEvent
from cdc_events._view import ChangeView

_LIMIT: Final = 10**20  # what 20 digits hold
_U64: Final = 2**64
_I64_MIN: Final = -(2**63)


def source_version(change: ChangeEvent | ChangeView) -> str:
    """The change's version: text whose byte-wise order is the order of the changes of its row.

    ``p<class><commit key><lsn>`` (PostgreSQL, 42 characters), ``m<class><file number><pos>
    <row>`` (MySQL, 62), else ``t<source ts_ms><partition><offset>`` (61); class ``0`` for a
    snapshot read, ``1`` for a streamed change; each number zero-padded to 20 digits. Equal for a
    redelivery, a dead-letter replay and a Debezium re-emit of one change (the ``t`` form
    excepted: it holds the Kafka position). See the module docstring and the README's
    "Versions" for the rule and its reasons.
    """
    if isinstance(change, ChangeView):
        return _version(
            change.connector,
            change.snapshot,
            change.lsn,
            change.commit_lsn,
            change.binlog,
            change.source_ts_ms,
            change.partition,
            change.offset,
        )
    src = change.source
    return _version(
        src.connector,
        src.snapshot,
        src.lsn,
        src.commit_lsn,
        src.binlog,
        src.ts_ms,
        change.partition,
        change.offset,
    )


def _version(
    connector: str | None,
    snapshot: str | None,
    lsn: int | None,
    commit_lsn: int | None,
    binlog: BinlogPosition | None,
    ts_ms: int | None,
    partition: int,
    offset: int,
) -> str:
    # The class. Numbers are padded with str(n).zfill(20): half the time of {n:020d}.
    phase = "0" if snapshot is not None and snapshot != "false" else "1"
    if binlog is not None:
        number = _binlog_number(binlog.file)
        if number is not None and 0 <= binlog.pos < _LIMIT and 0 <= binlog.row < _LIMIT:
            return (
                "m"
                + phase
                + str(number).zfill(20)
                + str(binlog.pos).zfill(20)
                + str(binlog.row).zfill(20)
            )
    elif lsn is not None and connector in SEQUENCE_CONNECTORS:
        # No connector at all: the unwrap form with ``__lsn``, which only PostgreSQL has.
        change_lsn = _unsigned(lsn)
        commit = change_lsn if commit_lsn is None else _unsigned(commit_lsn)
        if change_lsn is not None and commit is not None:
            return "p" + phase + str(commit).zfill(20) + str(change_lsn).zfill(20)
    # No usable position. A commit time before 1970 (none is real) or none counts as 0.
    return (
        "t" + str(max(ts_ms or 0, 0)).zfill(20) + str(partition).zfill(20) + str(offset).zfill(20)
    )


def _unsigned(lsn: int) -> int | None:
    """An LSN as unsigned 64 bits: Debezium writes one past 2**63 as a negative Java ``long``."""
    if 0 <= lsn < _U64:
        return lsn
    if _I64_MIN <= lsn < 0:
        return lsn + _U64
    return None


def _binlog_number(file: str) -> int | None:
    """``mysql-bin.000003`` -> 3: the number MySQL gives each binlog file, in order."""
    digits = file.rpartition(".")[2]
    if digits.isascii() and digits.isdigit() and len(digits) <= 20:
        return int(digits)
    return None
