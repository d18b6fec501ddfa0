"""Pure logic of the event store: Kafka record -> the row the store appends (no I/O here).

The runtime calls ``EventDecoder`` for every consumed record. It parses CDC topics with
``cdc_events.Parser`` and the user-activity topic with ``parse_user_activity``, and returns a
``ChangeRow`` (a change or a tombstone for ``cdc_events``), a ``UserEventRow`` (``user_events``),
a ``TransactionRow`` (``cdc_transactions``) or ``None`` for what the store does not keep
(heartbeats, schema-change records). Rows are built here, already in the column order and the
text form the sink COPYs, so the sink does nothing per event but hand them to PostgreSQL.

Tombstones carry no id of their own in ``cdc_events``: the decoder remembers the last delete per
key and partition and derives the tombstone's id from the delete's, so a Debezium re-emit of a
delete and its tombstone is absorbed as a whole. When the delete is not known (the writer
restarted between the two), the sink looks it up in the store (``ChangeRow.needs_delete``).

Each change carries its ``cdc_events`` version (``Versions.of``: one ``Versions`` per decoder,
so per process), the order of a row's changes across snapshots; a tombstone carries its
delete's. A snapshot's last read of a table also carries the table's sweep
(``cdc_events.sweep_version``), which the sink records in ``cdc_sweeps``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from cdc_events import (
    ChangeView,
    Heartbeat,
    Parser,
    SchemaChange,
    Tombstone,
    TransactionBoundary,
    UserActivity,
    Versions,
    parse_user_activity,
    source_version,
    sweep_version,
)

from event_store_writer._months import (
    month_bounds_ms,
    month_of_ms,
    months_ahead,
    partition_name,
)
from event_store_writer._positions import (
    orphan_tombstone_id,
    source_position,
    tombstone_id_after,
)
from event_store_writer._values import (
    _json,
    _row_json,
    iso_ms,
    key_hash,
    key_json,
    pg_text_array,
)

if TYPE_CHECKING:
    from consumer_runtime import Message

__all__ = [
    "CHANGE_COLUMNS",
    "USER_EVENT_COLUMNS",
    "ChangeRow",
    "EventDecoder",
    "StoreRecord",
    "TransactionRow",
    "UserEventRow",
    "change_row",
    "iso_ms",
    "key_hash",
    "key_json",
    "month_bounds_ms",
    "month_of_ms",
    "months_ahead",
    "orphan_tombstone_id",
    "partition_name",
    "pg_text_array",
    "source_position",
    "tombstone_id_after",
    "tombstone_row",
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

# Remembered deletes waiting for their tombstone. A connector with tombstones.on.delete=false
# never sends one, so the memory is bounded: past this many entries the oldest half is dropped
# (a dropped entry only costs one look-up in the store when its tombstone does come).
_PENDING_DELETES_MAX = 100_000


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


class EventDecoder:
    """The runtime's decoder: ``Message -> StoreRecord | None``; raises ``ParseError``.

    Stateful for tombstones (the last delete per key and partition) and versions (the point
    of the latest snapshot per partition, ``cdc_events.Versions``); one per process.
    """

    def __init__(
        self,
        parser: Parser | None = None,
        user_events_topics: Iterable[str] = ("user-events",),
        *,
        store_transactions: bool = True,
    ) -> None:
        self._parser = parser or Parser()
        self._user_topics = frozenset(user_events_topics)
        self._store_transactions = store_transactions
        self._deletes: dict[tuple[str, int, bytes | None], ChangeRow] = {}
        self._versions = Versions()

    def __call__(self, message: Message) -> StoreRecord | None:
        topic = message.topic() or ""
        partition = message.partition() or 0
        offset = message.offset() or 0
        if topic in self._user_topics:
            event = parse_user_activity(message.value(), max_bytes=self._parser.max_bytes)
            return user_event_row(event, topic, partition, offset)
        key = message.key()
        record = self._parser.parse_view(
            topic, partition, offset, key, message.value(), message.headers()
        )
        if type(record) is ChangeView:
            row = change_row(record, self._versions.of(record))
            if record.op == "d":
                self._remember_delete((topic, partition, key), row)
            return row
        if type(record) is Tombstone:
            return self._tombstone(record, key, message.timestamp()[1])
        if type(record) is TransactionBoundary:
            return transaction_row(record) if self._store_transactions else None
        if type(record) is Heartbeat or type(record) is SchemaChange:
            return None
        raise AssertionError(f"unexpected record type {type(record).__name__}")

    def _remember_delete(self, slot: tuple[str, int, bytes | None], row: ChangeRow) -> None:
        if len(self._deletes) >= _PENDING_DELETES_MAX:
            for stale in list(self._deletes)[: _PENDING_DELETES_MAX // 2]:
                del self._deletes[stale]
        self._deletes[slot] = row

    def _tombstone(self, tomb: Tombstone, key: bytes | None, broker_ts_ms: int) -> ChangeRow:
        delete = self._deletes.pop((tomb.topic, tomb.partition, key), None)
        if delete is not None and delete.values[5] < tomb.offset:
            return tombstone_row(
                tomb,
                event_id=tombstone_id_after(delete.event_id),
                event_time_ms=delete.event_time_ms,
                position=delete.values[17],
                delete=delete,
            )
        # Not seen in this process: provisional id, resolved by the sink from the store.
        fallback_ts = broker_ts_ms if broker_ts_ms > 0 else _now_ms()
        return tombstone_row(
            tomb,
            event_id=orphan_tombstone_id(tomb.topic, tomb.partition, tomb.offset),
            event_time_ms=fallback_ts,
            position=None,
            needs_delete=True,
        )


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
