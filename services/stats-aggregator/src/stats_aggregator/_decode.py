"""The decoder the runtime calls per Kafka record: bytes -> ``RowChange`` | ``UserEvent`` | None.

Pure (``cdc_events`` parsing only). Tombstones, heartbeats and transaction boundaries are
skipped (``None``); a record that cannot be parsed raises ``ParseError`` and one that parses but
cannot feed the statistics (a truncate, a row without a required column) raises
``PermanentError``: both go to the dead-letter topic while the partition keeps flowing.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Any, Final

import orjson
from cdc_events import (
    SHOP_COLUMN_TYPES,
    UNCHANGED,
    ChangeEvent,
    ParseError,
    Parser,
    Versions,
    integer_id,
    parse_user_activity,
    source_version,
    sweep_version,
)
from consumer_runtime import Message, PermanentError

from stats_aggregator._model import IMAGE_TYPES, Record, RowChange, UserEvent

#: Columns that must be present (not null) in an image for the statistics to use it.
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "customers": (),
    "products": (),
    "orders": ("customer_id", "status", "total", "created_at"),
    "order_items": ("order_id", "product_id", "quantity", "unit_price"),
}


class Decoder:
    """``decode(message)``: one per process (the parser caches compiled schemas)."""

    def __init__(self, user_events_topics: Collection[str] = ("user-events",)) -> None:
        self.user_events_topics = frozenset(user_events_topics)
        self.parser = Parser(column_types=SHOP_COLUMN_TYPES)
        self.versions = Versions()

    def __call__(self, message: Message) -> Record | None:
        topic = message.topic() or ""
        partition = message.partition() or 0
        offset = message.offset() or 0
        value = message.value()
        if topic in self.user_events_topics:
            return decode_user_event(value, partition, offset)
        record = self.parser.parse_record(
            topic, partition, offset, message.key(), value, message.headers()
        )
        if not isinstance(record, ChangeEvent):
            return None  # tombstone, heartbeat, transaction boundary, schema change
        return row_change(record, self.versions)


def row_change(event: ChangeEvent, versions: Versions | None = None) -> RowChange | None:
    table = event.source.table
    if table not in IMAGE_TYPES:
        return None  # a table the statistics do not read
    if event.op not in ("c", "u", "r", "d"):
        raise PermanentError(
            f"op {event.op!r} on {table} cannot be applied to the statistics "
            "(a truncate needs a rebuild of the read model)",
            code="unsupported_op",
        )
    key = integer_id(table, event.key, event.row)
    values: tuple[Any, ...] | None = None
    partial = False
    if event.op != "d":
        after = event.after or {}
        values = tuple(after.get(name) for name in IMAGE_TYPES[table]._fields)
        missing = [c for c in REQUIRED[table] if after.get(c) is None]
        if missing:
            raise PermanentError(
                f"{table} {key} without {', '.join(missing)}", code="missing_field"
            )
        partial = any(v is UNCHANGED for v in values)
    return RowChange(
        table=table,
        key=key,
        op=event.op,
        values=values,
        version=source_version(event) if versions is None else versions.of(event),
        sweep=sweep_version(event),
        lsn=event.source.lsn,
        event_id=event.event_id,
        source_ts_ms=event.source.ts_ms,
        partition=event.partition,
        offset=event.offset,
        partial=partial,
    )


def decode_user_event(value: bytes | None, partition: int, offset: int) -> UserEvent:
    event = parse_user_activity(value)
    duration: Decimal | None = None
    if event.duration_seconds is not None:
        duration = Decimal(repr(event.duration_seconds))
    elif value is not None and b'"duration"' in value:
        # The front end sends ``duration`` (seconds); the model knows ``duration_seconds``.
        raw = orjson.loads(value).get("duration")
        if raw is not None:
            if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
                raise ParseError("invalid_event", f"duration {raw!r:.40} is not seconds >= 0")
            duration = Decimal(repr(raw))
    return UserEvent(
        event_id=event.event_id,
        user_id=event.user_id,
        event_type=event.event_type,
        timestamp=event.timestamp,
        amount=event.amount,
        duration=duration,
        partition=partition,
        offset=offset,
    )
