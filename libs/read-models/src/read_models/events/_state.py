"""Rebuilding a row from its history (pure): the "event sourcing" read side of the store.

The CLI's ``cdc state`` and the verifier fold a row's stored changes, in source order
(``HISTORY_ORDER``), into its state at a time, and apply its table's sweep. Values are compared
in the store's normalised JSON form (decimals as exact strings, timestamps ISO-8601 UTC), so
``normalise_row`` turns a row read from the source database into that same form.

**Order.** A row's events are ordered by their ``cdc_events`` version (``cdc_events.version``,
``Versions.of``), which orders one row's changes across snapshots where the LSN does not (the
first transaction after a snapshot may hold LSNs below the snapshot's read of the row; a new
snapshot outranks what was streamed before it). Rows stored before versions (migration 0004)
have none: they come first, ordered by position (the LSN) as they were then, since a row's
events stored before the migration were consumed before those stored after it. Within equal
versions ``kind`` puts a tombstone after its delete (it carries the delete's version and
position), then the Kafka offset. A tombstone whose delete the store never had has neither
version nor position and comes last (it changes nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from cdc_events import normalise


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of ``cdc_events`` as the read side sees it."""

    event_id: str
    kind: str
    op: str | None
    key: dict[str, Any] | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    unchanged_columns: tuple[str, ...]
    source_ts: datetime | None
    event_time: datetime
    position: int | None
    lsn: int | None
    tx_id: str | None
    snapshot: bool
    topic: str
    kafka_partition: int
    kafka_offset: int
    version: str | None = None
    """``cdc_events`` version; None for an event stored before versions (migration 0004)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "op": self.op,
            "key": self.key,
            "before": self.before,
            "after": self.after,
            "unchanged_columns": list(self.unchanged_columns),
            "source_ts": normalise_value(self.source_ts),
            "event_time": normalise_value(self.event_time),
            "position": self.position,
            "lsn": self.lsn,
            "tx_id": self.tx_id,
            "snapshot": self.snapshot,
            "topic": self.topic,
            "kafka_partition": self.kafka_partition,
            "kafka_offset": self.kafka_offset,
            "version": self.version,
        }


#: A row's events in source order (see the module docstring), as an SQL ``ORDER BY`` list on
#: ``cdc_events`` columns: the rows without a version but with a position (stored before
#: migration 0004) first, then those with a version, then those with neither (a tombstone whose
#: delete was never stored).
HISTORY_ORDER: Final = (
    "CASE WHEN version IS NOT NULL THEN 1 WHEN position IS NOT NULL THEN 0 ELSE 2 END, "
    "version, position, kind, kafka_offset"
)


def rebuild_state(events: Iterable[StoredEvent], sweep: str | None = None) -> dict[str, Any] | None:
    """The row after applying ``events`` (in source order); ``None`` if absent or deleted.

    A create or snapshot read sets the row; an update replaces it, keeping the previous value
    of every column listed as unchanged (TOAST); a delete or a truncate removes it; tombstones
    and logical messages change nothing.

    ``sweep``: the highest sweep of the row's table (``cdc_sweeps``). A row whose newest change
    has a version below it was neither read by that snapshot nor changed after it: it is gone
    (deleted while Debezium had no offsets, and a snapshot emits no delete). A change stored
    before versions (none) counts as below every sweep: the sweeps are all recorded after it.
    """
    state: dict[str, Any] | None = None
    newest: str | None = None
    for event in events:
        if event.kind != "change":
            continue
        newest = event.version
        if event.op in ("c", "r", "u"):
            new = dict(event.after or {})
            if state is not None:
                for column in event.unchanged_columns:
                    if column in state:
                        new[column] = state[column]
            state = new
        elif event.op in ("d", "t"):
            state = None
    if state is not None and sweep is not None and (newest is None or newest < sweep):
        return None
    return state


# The store's JSON form is the parser's normalised form, for events and rows read back alike.
normalise_value = normalise


def normalise_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): normalise_value(v) for k, v in row.items()}


def parse_key(text: str, key_columns: Iterable[str] | None = None) -> dict[str, Any]:
    """A key given on the command line: a JSON object, or one value of a one-column key.

    ``42`` becomes ``{"id": 42}`` when the table's key is ``id``; a value that is not JSON is
    taken as a string.
    """
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = text
    if isinstance(parsed, dict):
        return parsed
    columns = list(key_columns or [])
    if len(columns) != 1:
        raise ValueError(
            "give the key as a JSON object (e.g. '{\"id\": 42}'): "
            + (
                f"the table's key has columns {', '.join(columns)}"
                if columns
                else "no stored event of this table tells its key columns"
            )
        )
    return {columns[0]: parsed}


def parse_time(text: str) -> datetime:
    """ISO-8601 (no offset means UTC), or ``now``."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
