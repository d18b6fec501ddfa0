"""Pure logic: a Kafka record -> the name of the table one of whose rows changed (no I/O).

Row changes (create, update, delete, snapshot read) count; tombstones, heartbeats, transaction
boundaries and schema changes are skipped (``None``). A record that does not parse raises
``cdc_events.ParseError``: the runtime dead-letters it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from cdc_events import ChangeEvent, parse_record
from consumer_runtime import Message

ROW_OPS = frozenset("cudr")


def decode(message: Message) -> str | None:
    record = parse_record(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.key(),
        message.value(),
    )
    if isinstance(record, ChangeEvent) and record.op in ROW_OPS:
        return record.table
    return None


def count(tables: Iterable[str]) -> list[tuple[str, int]]:
    """Changes per table, in table order (one upsert row each)."""
    return sorted(Counter(tables).items())
