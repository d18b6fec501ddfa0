"""The flusher's sink when the lake is Iceberg tables only (the default with a catalog: no
Parquet export, ``LAKE_PARQUET_EXPORT=false``): ``IcebergSink``.

Each batch's changes are checked (the column types, ``_encodable``; the changes tables' own,
``ChangesWriter.refuse_incompatible``: a refusal dead-letters that record), handed to the
``ChangesWriter`` (claims, buffers, background commits every ``LAKE_COMMIT_INTERVAL_SECONDS``),
and every call reports "durable up to" offsets: per partition, the first offset not yet
committed to its table, or everything handed over when nothing of it is held. The runtime
commits only that (``commit-after-flush``). Revoke and shutdown commit what is held and wait.
``jobs`` materializes the report tables and maintains the tables while this process holds the
orders topic's partition 0 (``leads``). Nothing is windowed here: the report tables are
recomputed from the changes tables (``report_queries``).
"""

from __future__ import annotations

from collections.abc import Sequence

from consumer_runtime import BaseSink, Batch, Offsets, TopicPartition

from analytics_flusher._changes import Change
from analytics_flusher._encodable import refuse_unencodable
from analytics_flusher._metrics import Buffered, LakeMetrics
from analytics_flusher.store import ChangesWriter, LakeJobs

__all__ = ["IcebergSink"]


class IcebergSink(BaseSink[Change]):
    """Every change into the Iceberg changes tables, exactly once (see the module docstring)."""

    def __init__(
        self,
        changes: ChangesWriter,
        *,
        leader_partition: TopicPartition | None = None,
        metrics: LakeMetrics | None = None,
    ) -> None:
        self.changes = changes
        self.jobs: LakeJobs | None = None
        self.leader_partition = leader_partition
        self.metrics = metrics or LakeMetrics()
        # Served by the runtime on /metrics next to its own (the writer's are in it too).
        self.metrics_registry = self.metrics.registry
        self._handed: dict[TopicPartition, int] = {}  # the next offset handed over

    def write_batch(self, batch: Batch[Change]) -> Offsets | None:
        refuse_unencodable(batch)  # before anything is buffered: the batch is taken whole or not
        self.changes.claim_pending()
        self.changes.refuse_incompatible(batch)
        for tp, next_offset in batch.next_offsets.items():
            self.changes.add(tp, batch.records.get(tp, ()), next_offset)
            self._handed[tp] = max(next_offset, self._handed.get(tp, 0))
        self.changes.poll()  # a commit due starts in the background
        return self._durable(list(self._handed))

    def buffered(self) -> list[Buffered]:
        """What waits for the next commit (``cdc_sink_buffered_*{buffer="iceberg"}``)."""
        rows, size = self.changes.buffered()
        return [Buffered("iceberg", rows, size)]

    def on_assign(self, partitions: Sequence[TopicPartition]) -> None:
        self.changes.assign(partitions)

    def on_revoke(self, partitions: Sequence[TopicPartition]) -> Offsets | None:
        try:
            self.changes.commit(partitions)
            return self._durable(partitions)
        finally:
            self.on_lost(partitions)

    def on_lost(self, partitions: Sequence[TopicPartition]) -> None:
        self.changes.drop(partitions)
        for tp in partitions:
            self._handed.pop(tp, None)

    def flush(self) -> Offsets | None:
        self.changes.commit()
        return self._durable(list(self._handed))

    def tick(self) -> Offsets | None:
        self.changes.claim_pending()
        self.changes.poll()
        return self._durable(list(self._handed)) or None

    def leads(self) -> bool:
        """This process holds ``leader_partition``: it runs the lake's scheduled jobs."""
        return self.leader_partition is not None and self.changes.holds(self.leader_partition)

    def close(self) -> None:
        if self.jobs is not None:
            self.jobs.stop()
        self.changes.close()

    def _durable(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        out: dict[TopicPartition, int] = {}
        for tp in partitions:
            handed = self._handed.get(tp)
            if handed is None:
                continue
            held = self.changes.durable(tp)
            out[tp] = handed if held is None else held
        return out
