"""What ``ChangesWriter`` holds of each partition until it is committed: its changes as Arrow
rows, a chunk per batch (``Held``), and where the partition stands (``Buffer``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa  # type: ignore[import-untyped]
from consumer_runtime import TopicPartition

from analytics_flusher._changes import Change
from analytics_flusher.store._iceberg._evolve import Extra
from analytics_flusher.store._iceberg._tables import table_rows

__all__ = ["Buffer", "Entries", "Held", "Sealed"]


@dataclass(slots=True)
class Held:
    """A partition's changes not yet committed, as Arrow rows (a chunk per batch: a tenth of
    the memory of the change objects, and nothing left to convert at commit time), with the
    extra columns of the chunks that have any (``_evolve``; kept as values, rarely present)."""

    chunks: list[tuple[pa.Table, list[Extra] | None]] = field(default_factory=list)
    rows: int = 0
    first: int | None = None  # the offset of the first change
    oldest_ms: int | None = None  # the oldest source_ts_ms

    def add(self, table: str, partition: int, changes: Sequence[Change]) -> None:
        extras = [c.extra for c in changes] if any(c.extra for c in changes) else None
        self.chunks.append((table_rows(table, partition, changes), extras))
        self.rows += len(changes)
        if self.first is None:
            self.first = changes[0].offset
        oldest = min(c.source_ts_ms for c in changes)
        self.oldest_ms = oldest if self.oldest_ms is None else min(self.oldest_ms, oldest)

    def take(self) -> Held:
        """Everything held, moved out (this one is left empty)."""
        taken = Held(self.chunks, self.rows, self.first, self.oldest_ms)
        self.chunks, self.rows, self.first, self.oldest_ms = [], 0, None, None
        return taken

    def put_back(self, earlier: Held) -> None:
        """``earlier`` (taken before everything held now) in front again."""
        self.chunks = earlier.chunks + self.chunks
        self.rows += earlier.rows
        self.first = earlier.first
        if self.oldest_ms is None or (
            earlier.oldest_ms is not None and earlier.oldest_ms < self.oldest_ms
        ):
            self.oldest_ms = earlier.oldest_ms


#: One table's part of a commit: each partition's changes and end offset.
Entries = list[tuple[TopicPartition, Held, int]]
#: One commit's changes, per table.
Sealed = dict[str, Entries]


@dataclass(slots=True)
class Buffer:
    table: str
    held: Held = field(default_factory=Held)
    #: The next offset handed over: every record below it is buffered, skipped or recorded.
    next_offset: int = 0
