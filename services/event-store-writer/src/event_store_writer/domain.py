"""Pure logic of the event store: Kafka record -> the row the store appends (no I/O here).

The runtime calls ``EventDecoder`` for every consumed record. It parses CDC topics with
``cdc_events.Parser`` and the user-activity topic with ``parse_user_activity``, and returns a
``ChangeRow`` (a change or a tombstone for ``cdc_events``), a ``UserEventRow`` (``user_events``),
a ``TransactionRow`` (``cdc_transactions``) or ``None`` for what the store does not keep
(heartbeats, schema-change records). The rows (``_rows``) are already in the column order and
the text form the sink COPYs, so the sink does nothing per event but hand them to PostgreSQL.

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
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cdc_events import (
    ChangeView,
    Heartbeat,
    Parser,
    SchemaChange,
    Tombstone,
    TransactionBoundary,
    Versions,
    parse_user_activity,
)
from read_models.events import key_hash, key_json

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
from event_store_writer._rows import (
    CHANGE_COLUMNS,
    USER_EVENT_COLUMNS,
    ChangeRow,
    StoreRecord,
    TransactionRow,
    UserEventRow,
    change_row,
    tombstone_row,
    transaction_row,
    user_event_row,
    with_resolved_delete,
)
from event_store_writer._values import (
    iso_ms,
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

# Remembered deletes waiting for their tombstone. A connector with tombstones.on.delete=false
# never sends one, so the memory is bounded: past this many entries the oldest half is dropped
# (a dropped entry only costs one look-up in the store when its tombstone does come).
_PENDING_DELETES_MAX = 100_000


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
