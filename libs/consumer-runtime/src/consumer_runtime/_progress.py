"""The member's progress as the outside sees it: commits, and the gauges read from offsets.

``_offsets.OffsetTracker`` decides what may be committed; this module does the rest of the
bookkeeping around it for the loop: it commits to Kafka (a failed commit is counted and logged,
never fatal: the records may only be read again), observes the end-to-end latency of records
when they become durable (``_latency.DurableLatency``), reports lag from the durable offset and
the number of assigned partitions, and drops all of it for a partition that leaves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from consumer_runtime._client import ConsumerClient
from consumer_runtime._errors import CommitFailedError
from consumer_runtime._health import HealthState
from consumer_runtime._latency import DurableLatency
from consumer_runtime._message import TopicPartition
from consumer_runtime._metrics import Metrics
from consumer_runtime._offsets import OffsetTracker
from consumer_runtime._sink import Batch, Offsets, source_timestamp_ms


class Progress:
    """Commits, end-to-end latency, lag and the assignment gauge of one consumer loop."""

    def __init__(
        self,
        *,
        client: ConsumerClient,
        offsets: OffsetTracker,
        metrics: Metrics,
        health: HealthState,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self._client = client
        self._offsets = offsets
        self._metrics = metrics
        self._health = health
        self._log = log
        self._latency = DurableLatency(metrics.observe_latency)

    def handed(self, batch: Batch[Any]) -> None:
        """The sink accepted ``batch`` (durable now or later)."""
        self._offsets.handed(batch.next_offsets)
        for tp, records in batch.records.items():
            # Observed once these records are durable: now, or when the sink reports them.
            ts = source_timestamp_ms(records[-1]) if records else None
            if ts is not None and tp in batch.next_offsets:
                self._latency.handed(tp, batch.next_offsets[tp], ts)

    def record_durable(self, handed: Mapping[TopicPartition, int], durable: Offsets | None) -> None:
        """Remember what the sink made durable (``None``: everything it was handed)."""
        self._latency.durable(self._offsets.record_durable(handed, durable))

    def commit(self, offsets: dict[TopicPartition, int], *, asynchronous: bool) -> None:
        if not offsets:
            return
        try:
            self._client.commit(offsets, asynchronous=asynchronous)
        except CommitFailedError as exc:
            self._metrics.count_commit_failure()
            self._log.warning(
                "offset commit failed; the records may be read again",
                error=str(exc),
                offsets={str(k): v for k, v in offsets.items()},
            )
            return
        self._offsets.committed_to(offsets)

    def report_lag(self) -> None:
        if not self._offsets.assigned:
            return
        try:
            watermarks = self._client.high_watermarks(sorted(self._offsets.assigned))
        except Exception as exc:  # a gauge must never stop the loop
            self._log.debug("lag lookup failed", error=str(exc))
            return
        for tp, high in watermarks.items():
            base = self._offsets.lag_base(tp)
            if base is not None and high >= 0:
                self._metrics.set_lag(tp.topic, tp.partition, max(0, high - base))

    def forget(self, partitions: Sequence[TopicPartition]) -> None:
        """``partitions`` left this member: what was not committed is the next owner's."""
        self._offsets.forget(partitions)
        for tp in partitions:
            self._latency.forget(tp)
            self._metrics.drop_lag(tp.topic, tp.partition)
        self.update_assigned()

    def update_assigned(self) -> None:
        assigned = len(self._offsets.assigned)
        self._health.assigned = assigned
        self._metrics.set_assigned(assigned)
