"""``source_version``: a change's place in its source's history, as text whose plain byte order
is the order of the changes of one row, across snapshots.

Every sink that keeps the latest state of a row (a version-guarded DynamoDB item, a PostgreSQL
row updated ``WHERE version < :new``, the newest row per key in a Parquet report) must not let
an older change overwrite a newer one. The Kafka offset cannot say which is newer: a dead-letter
replay re-produces the original bytes at a new offset, and a re-created topic starts again from
0. The source's position can, read with care.

**Generations.** Debezium may snapshot a database more than once: the initial snapshot, and
again whenever it has lost its offsets (``snapshot.mode=initial`` with the offsets gone,
``always``, a failover). Everything it emits belongs to a *generation*: the reads of one
snapshot, taken at its consistent point ``C``, and the changes streamed after it (all committed
after ``C``, and before the next snapshot's point). A later generation is newer than all of an
earlier one: a new snapshot's read of a row replaces whatever the earlier generation said of it,
also when the relay lost changes in between. So every version starts with a *generation key*
``G`` that orders generations, then the place within one:

* PostgreSQL (``q``): ``source.lsn`` alone is not an order. Transactions interleave in the WAL
  and are emitted in commit order, and a transaction open across a snapshot's point has change
  LSNs *below* it although it committed after it. Debezium's ``source.sequence``
  ``["<lastCommitLsn>", "<lsn>"]`` adds the commit LSN of the transaction it processed before
  this one (``commit_lsn``), which grows in commit order; it is null for snapshot reads and for
  the first transaction streamed after a snapshot.

  - a snapshot read: ``G`` = its LSN (the snapshot's point ``C``), class ``1``;
  - a streamed change with a commit key ``P``: ``G = P``, class ``2``. ``P >= C`` of its own
    generation (the transaction before it was streamed after ``C``), and ``P <`` the next
    snapshot's point (it committed before the relay went down). So it sorts after its own
    snapshot's reads and before the next one's, and among streamed changes by commit key then
    LSN, as before;
  - the first transaction after a snapshot (no commit key): ``G = max(lsn, C)`` where ``C`` is
    the point of the snapshot whose reads came before it in its partition
    (``snapshot_point``, kept by ``Versions``); its changes then follow their LSNs. Without
    ``C`` (none given), ``G`` is its LSN: right unless the transaction was open across the
    point (then it sorts below that snapshot's read of the same row).
* MySQL (``n``): the binlog is written in commit order, and a snapshot's reads carry the
  position it was taken at: file number, ``pos``, class (``1`` read, ``2`` streamed), ``row``.
* Anything else (``t``): the source's commit time in ms, the Kafka partition and offset (only as
  good as the clock, and a replay at a new offset sorts after its original). No generations.

Class ``0`` is the *sweep* of a generation (``sweep_version``): when a snapshot has read the last
row of a table, rows of that table whose version is below ``sweep_version(C)`` were neither read
by the snapshot nor changed after it: they are gone from the source (deleted while the relay had
no offsets; a snapshot emits no deletes), and a sink deletes them with that version.

Each number is zero-padded to 20 digits, the width of an unsigned 64-bit value, so the versions
of one form have one length and compare as text (PostgreSQL ``COLLATE "C"``, a DynamoDB ``S``
attribute in a condition expression, a Parquet string column). Versions of different forms do
not compare meaningfully (one row's changes all come through one connector, so one form). The
forms before generations (``p``/``m``, class first) sort below these: a row stored with one is
replaced by its next change.
"""

from __future__ import annotations

from typing import Final

from cdc_events._fields import SEQUENCE_CONNECTORS
from cdc_events._model import BinlogPosition, ChangeEvent
from cdc_events._view import ChangeView

_LIMIT: Final = 10**20  # what 20 digits hold
_U64: Final = 2**64
_I64_MIN: Final = -(2**63)
_ZERO: Final = "0" * 20

#: ``source.snapshot`` of the last read of a table in a snapshot (Debezium 2.x and later): the
#: last of the whole snapshot, and the last of each table before it.
LAST_READS: Final = frozenset({"last", "last_in_data_collection"})


def source_version(change: ChangeEvent | ChangeView, snapshot_point: int | None = None) -> str:
    """The change's version: text whose byte-wise order is the order of the changes of its row.

    ``q<G><class><commit key><lsn>`` (PostgreSQL, 62 characters), ``n<file number><pos><class>
    <row>`` (MySQL, 62), else ``t<source ts_ms><partition><offset>`` (61); class ``1`` for a
    snapshot read, ``2`` for a streamed change; each number zero-padded to 20 digits.
    ``snapshot_point``: the LSN of the latest snapshot whose reads its partition carried before
    it (``Versions`` keeps it); only the first transaction after a snapshot needs it. Equal for
    a redelivery, a dead-letter replay and a Debezium re-emit of one change (the ``t`` form
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
            snapshot_point,
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
        snapshot_point,
    )


def sweep_version(read: ChangeEvent | ChangeView) -> str | None:
    """For the last read of a table in a snapshot, the version a sink deletes the table's rows
    with that this snapshot did not read and nothing changed after it: those whose version is
    below it. Above every version of earlier generations, below every one of this snapshot's
    reads. ``None`` for any other change, or one without a position (the ``t`` form)."""
    if isinstance(read, ChangeView):
        snapshot, connector, lsn, binlog = read.snapshot, read.connector, read.lsn, read.binlog
    else:
        src = read.source
        snapshot, connector, lsn, binlog = src.snapshot, src.connector, src.lsn, src.binlog
    if snapshot not in LAST_READS:
        return None
    if binlog is not None:
        number = _binlog_number(binlog.file)
        if number is not None and 0 <= binlog.pos < _LIMIT:
            return "n" + str(number).zfill(20) + str(binlog.pos).zfill(20) + "0" + _ZERO
        return None
    if lsn is not None and connector in SEQUENCE_CONNECTORS:
        point = _unsigned(lsn)
        if point is not None:
            return "q" + str(point).zfill(20) + "0" + _ZERO + _ZERO
    return None


def snapshot_point_of(change: ChangeEvent | ChangeView) -> int | None:
    """The consistent point (LSN) of the snapshot a PostgreSQL snapshot read belongs to."""
    if isinstance(change, ChangeView):
        snapshot, connector, lsn = change.snapshot, change.connector, change.lsn
    else:
        snapshot, connector, lsn = (
            change.source.snapshot,
            change.source.connector,
            change.source.lsn,
        )
    if snapshot is None or snapshot in ("false", "incremental") or lsn is None:
        return None
    if connector not in SEQUENCE_CONNECTORS:
        return None
    return _unsigned(lsn)


class Versions:
    """``source_version`` for one consumer: remembers, per partition, the point of the latest
    snapshot whose reads it saw, and gives it to the first transaction streamed after that
    snapshot (which has no commit key, and may hold LSNs below the point).

    In memory: a consumer that restarts (or takes the partition over) between a snapshot's last
    read in a partition and the first transaction after it gives that transaction its LSN as
    generation key (see ``source_version``)."""

    __slots__ = ("_points",)

    def __init__(self) -> None:
        self._points: dict[tuple[str, int], int] = {}

    def of(self, change: ChangeEvent | ChangeView, topic: str | None = None) -> str:
        """The version of ``change``; ``topic`` overrides the change's own topic as the key
        (a decoder that reads one table from several topics passes the Kafka topic)."""
        key = (change.topic if topic is None else topic, change.partition)
        point = snapshot_point_of(change)
        if point is not None:
            known = self._points.get(key)
            if known is None or point > known:
                self._points[key] = point
            return source_version(change)
        return source_version(change, self._points.get(key))


def _version(
    connector: str | None,
    snapshot: str | None,
    lsn: int | None,
    commit_lsn: int | None,
    binlog: BinlogPosition | None,
    ts_ms: int | None,
    partition: int,
    offset: int,
    snapshot_point: int | None,
) -> str:
    # Numbers are padded with str(n).zfill(20): half the time of {n:020d}.
    read = snapshot is not None and snapshot != "false"
    if binlog is not None:
        number = _binlog_number(binlog.file)
        if number is not None and 0 <= binlog.pos < _LIMIT and 0 <= binlog.row < _LIMIT:
            return (
                "n"
                + str(number).zfill(20)
                + str(binlog.pos).zfill(20)
                + ("1" if read else "2")
                + str(binlog.row).zfill(20)
            )
    elif lsn is not None and connector in SEQUENCE_CONNECTORS:
        # No connector at all: the unwrap form with ``__lsn``, which only PostgreSQL has.
        change_lsn = _unsigned(lsn)
        if change_lsn is not None:
            if read:
                text = str(change_lsn).zfill(20)
                return "q" + text + "1" + text + text
            if commit_lsn is not None:
                commit = _unsigned(commit_lsn)
                if commit is None:
                    return _by_time(ts_ms, partition, offset)
                key = str(commit).zfill(20)
                return "q" + key + "2" + key + str(change_lsn).zfill(20)
            generation = change_lsn
            if snapshot_point is not None and snapshot_point > generation:
                generation = snapshot_point
            text = str(change_lsn).zfill(20)
            return "q" + str(generation).zfill(20) + "2" + text + text
    return _by_time(ts_ms, partition, offset)


def _by_time(ts_ms: int | None, partition: int, offset: int) -> str:
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
