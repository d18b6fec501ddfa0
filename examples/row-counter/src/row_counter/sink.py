"""The sink: per-table counts and the batch's offsets in one PostgreSQL transaction (``store``).

Sink-managed: the runtime resumes each partition from the offsets stored with the counts, so
a crash, a redelivery or a rebalance counts no record twice.
"""

from __future__ import annotations

from collections.abc import Sequence

from consumer_runtime import BaseSink, Batch, Offsets, TopicPartition

from row_counter.domain import count
from row_counter.settings import NAME, Settings
from row_counter.store import CountStore


class RowCountSink(BaseSink[str]):
    def __init__(self, store: CountStore, group: str) -> None:
        self.store = store
        self.group = group

    @classmethod
    def from_settings(cls, settings: Settings) -> RowCountSink:
        return cls(CountStore.from_settings(settings), settings.group_id(NAME))

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> Offsets:
        return self.store.claim(self.group, partitions)

    def write_batch(self, batch: Batch[str]) -> Offsets | None:
        self.store.add(self.group, count(batch), batch.next_offsets)
        return None

    def close(self) -> None:
        self.store.close()
