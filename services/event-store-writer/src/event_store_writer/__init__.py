"""Appends every CDC change and user event to an immutable PostgreSQL event store, exactly once.

``EventDecoder`` turns Kafka records into store rows (pure), ``EventStoreSink`` appends a batch
and its offsets in one transaction, ``rebuild_state`` folds a row's history back into the row.
Run it with ``python -m event_store_writer``; read it back with ``cdc history`` / ``cdc state``.
"""

from read_models.events import StoredEvent, normalise_row, parse_key, rebuild_state

from event_store_writer.domain import (
    CHANGE_COLUMNS,
    USER_EVENT_COLUMNS,
    ChangeRow,
    EventDecoder,
    StoreRecord,
    TransactionRow,
    UserEventRow,
)
from event_store_writer.settings import Settings
from event_store_writer.sink import EventStoreSink, StoreMetrics
from event_store_writer.store import upgrade_schema

__all__ = [
    "CHANGE_COLUMNS",
    "USER_EVENT_COLUMNS",
    "ChangeRow",
    "EventDecoder",
    "EventStoreSink",
    "Settings",
    "StoreMetrics",
    "StoreRecord",
    "StoredEvent",
    "TransactionRow",
    "UserEventRow",
    "normalise_row",
    "parse_key",
    "rebuild_state",
    "upgrade_schema",
]
