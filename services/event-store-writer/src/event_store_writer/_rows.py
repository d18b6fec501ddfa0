"""The rows the store appends, in the column order and the text form the sink COPYs (pure).

``ChangeRow`` (a change or a tombstone for ``cdc_events``), ``UserEventRow`` (``user_events``)
and ``TransactionRow`` (``cdc_transactions``), and how each is built from what ``cdc_events``
parsed, so the sink does nothing per event but hand them to PostgreSQL.

A change's row carries its ``cdc_events`` version (given by the decoder's ``Versions``) and, on a
snapshot's last read of a table, the table's sweep (``cdc_events.sweep_version``). A tombstone
has no id of its own: its row takes the id derived from its delete's (``tombstone_id_after``)
and the delete's time, position and version, or a provisional id the sink resolves from the
store (``with_resolved_delete``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson
from cdc_events import (
    ChangeView,
    Tombstone,
    TransactionBoundary,
    UserActivity,
    source_version,
    sweep_version,
)
from read_models.events import key_hash, key_json

from event_store_writer._positions import (
    orphan_tombstone_id,
    source_position,
    tombstone_id_after,
)
from event_store_writer._values import (
    _json,
    _row_json,
    iso_ms,
    pg_text_array,
)

__all__ = [
    "CHANGE_COLUMNS",
    "USER_EVENT_COLUMNS",
    "ChangeRow",
    "StoreRecord",
    "TransactionRow",
    "UserEventRow",
    "change_row",
    "tombstone_row",
    "transaction_row",
    "user_event_row",
    "with_resolved_delete",
]

#: Column order of ``ChangeRow.values`` (the COPY into the batch's temporary table).
CHANGE_COLUMNS: Final = (
    "event_id",
    "event_time",
    "kind",
    "topic",
    "kafka_partition",
    "kafka_offset",
    "connector",
    "db_name",
    "schema_name",
    "table_name",
    "op",
    "key",
    "before",
    "after",
    "unchanged_columns",
    "source_ts",
    "debezium_ts",
    "position",
    "lsn",
    "tx_id",
    "binlog",
    "transaction",
    "snapshot",
    "key_hash",
    "version",
)

#: Column order of ``UserEventRow.values``.
USER_EVENT_COLUMNS: Final = (
    "event_id",
    "user_id",
    "event_type",
    "event_ts",
    "amount",
    "duration_seconds",
    "metadata",
    "topic",
    "kafka_partition",
    "kafka_offset",
)


@dataclass(slots=True)
class ChangeRow:
    """One row of ``cdc_events``: a change (``kind="change"``) or a tombstone.

    Not frozen, to be built three times faster (one per event); nothing changes one once built.
    """

    event_id: str
    event_time_ms: int
    """Partition key: the source commit time; for a tombstone, its delete's (or the broker's)."""
    values: tuple[Any, ...]
    """In ``CHANGE_COLUMNS`` order, each value in PostgreSQL's text form (timestamps ISO)."""
    needs_delete: bool = False
    """A tombstone whose delete was not seen by this process: the sink resolves its id."""
    source_ts_ms: int | None = None
    sweep: str | None = None
    """``cdc_events.sweep_version`` of a snapshot's last read of its table (else None)."""


@dataclass(frozen=True, slots=True)
class UserEventRow:
    """One row of ``user_events`` (and a sighting of its user for ``users``)."""

    event_id: str
    user_id: str
    event_ts: str
    source_ts_ms: int
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class TransactionRow:
    """A BEGIN or END of a source transaction, merged per id into ``cdc_transactions``."""

    topic: str
    tx_id: str
    raw_id: str
    status: str
    ts_ms: int | None
    event_count: int | None
    data_collections: str | None

    @property
    def source_ts_ms(self) -> int | None:
        return self.ts_ms


StoreRecord = ChangeRow | UserEventRow | TransactionRow


def change_row(event: ChangeView, version: str | None = None) -> ChangeRow:
    """The ``cdc_events`` row of a change, in ``CHANGE_COLUMNS`` order.

    ``version``: the change's ``Versions.of`` (the decoder's); None computes it without a
    snapshot's point (``source_version``: right unless the change belongs to a transaction open
    across a snapshot's point).
    """
    fast = None
    if not event.unchanged_columns and not event.before_is_key_only:
        try:
            fast = (key_json(event.key), _row_json(event.before), _row_json(event.after))
        except (orjson.JSONEncodeError, TypeError):  # e.g. a time with a zone: library form
            fast = None
    key, before, after = _library_form(event) if fast is None else fast
    source_ts = event.source_ts_ms
    ts = source_ts if source_ts is not None else (event.ts_ms or 0)
    ts_text = iso_ms(ts)
    values = (
        event.event_id,
        ts_text,
        "change",
        event.topic,
        event.partition,
        event.offset,
        event.connector,
        event.db,
        event.schema,
        event.table,
        event.op,
        key,
        before,
        after,
        pg_text_array(event.unchanged_columns) if event.unchanged_columns else None,
        None if source_ts is None else ts_text,
        None if event.ts_ms is None else iso_ms(event.ts_ms),
        source_position(event),
        event.lsn,
        event.tx_id,
        None if event.binlog is None else _json(event.binlog.to_dict()),
        None if event.transaction is None else _json(event.transaction.to_dict()),
        event.is_snapshot,
        key_hash(event.table, key),
        source_version(event) if version is None else version,
    )
    return ChangeRow(event.event_id, ts, values, source_ts_ms=source_ts, sweep=sweep_version(event))


def _library_form(event: ChangeView) -> tuple[str | None, str | None, str | None]:
    """Key, before and after in the library's normalised form (TOAST, key-only ``before``)."""
    key, before, after = event.normalised_rows()
    return key_json(key), _json(before), _json(after)


def tombstone_row(
    tomb: Tombstone,
    *,
    event_id: str,
    event_time_ms: int,
    position: int | None,
    delete: ChangeRow | None = None,
    needs_delete: bool = False,
) -> ChangeRow:
    """The ``cdc_events`` row of a tombstone (source fields, position and version copied from
    its delete if known)."""
    dv = delete.values if delete is not None else None
    table = dv[9] if dv else tomb.table
    key = key_json(tomb.to_dict()["key"])
    values = (
        event_id,
        iso_ms(event_time_ms),
        "tombstone",
        tomb.topic,
        tomb.partition,
        tomb.offset,
        dv[6] if dv else None,
        dv[7] if dv else None,
        dv[8] if dv else None,
        table,
        None,
        key,
        None,
        None,
        None,
        None,
        None,
        position,
        None,
        dv[19] if dv else None,
        None,
        None,
        False,
        key_hash(table, key),
        dv[24] if dv else None,
    )
    return ChangeRow(event_id, event_time_ms, values, needs_delete)


def with_resolved_delete(
    row: ChangeRow,
    delete_event_id: str | None,
    event_time_ms: int | None,
    position: int | None,
    version: str | None = None,
) -> ChangeRow:
    """A tombstone row whose delete the sink found in the store (or did not: orphan id), with
    the delete's time, position and version (None for a delete stored before versions)."""
    v = row.values
    if delete_event_id is None:
        event_id = orphan_tombstone_id(v[3], v[4], v[5])
    else:
        event_id = tombstone_id_after(delete_event_id)
    ts = row.event_time_ms if event_time_ms is None else event_time_ms
    values = (event_id, iso_ms(ts), *v[2:17], position, *v[18:24], version)
    return ChangeRow(event_id, ts, values)


def user_event_row(event: UserActivity, topic: str, partition: int, offset: int) -> UserEventRow:
    ts = event.timestamp
    ts_text = ts.isoformat()
    values = (
        event.event_id,
        event.user_id,
        event.event_type,
        ts_text,
        None if event.amount is None else format(event.amount, "f"),
        event.duration_seconds,
        _json(event.metadata),
        topic,
        partition,
        offset,
    )
    return UserEventRow(event.event_id, event.user_id, ts_text, int(ts.timestamp() * 1000), values)


def transaction_row(tb: TransactionBoundary) -> TransactionRow:
    collections = _json(dict(tb.data_collections)) if tb.event_count is not None else None
    return TransactionRow(
        tb.topic, tb.tx_id, tb.id, tb.status, tb.ts_ms, tb.event_count, collections
    )
