"""Prometheus metrics of one runtime, in its own registry (several runtimes can share a process).

Names are shared by every service (dashboards and alerts select by the ``service`` label).
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Batch writes range from sub-millisecond (no-op sink) to seconds (a flushed window to S3).
_BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Source commit to sink: sub-second when caught up, minutes while a backlog drains. 1.5 and 2 s
# too: freshness targets are stated in seconds (a p99 of at most 2 s), and a bucket boundary
# is all a histogram can tell.
_LATENCY_BUCKETS = (
    *(0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 5.0),
    *(10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)


class Metrics:
    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "cdc_messages_total",
            "Records handled, by outcome (processed, dlq, skipped).",
            ["service", "topic", "outcome"],
            registry=r,
        )
        self.batch_duration = Histogram(
            "cdc_batch_duration_seconds",
            "Decode + DLQ + sink write + commit of one batch.",
            ["service"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.e2e_latency = Histogram(
            "cdc_end_to_end_latency_seconds",
            "Sink durable time minus source commit time (newest record per partition and batch).",
            ["service", "topic"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "cdc_consumer_lag",
            "High watermark minus the next offset to process.",
            ["service", "topic", "partition"],
            registry=r,
        )
        self.retries = Counter(
            "cdc_retries_total", "Retry attempts after a RetryableError.", ["service"], registry=r
        )
        self.rebalances = Counter(
            "cdc_rebalances_total",
            "Rebalance events, by kind (assign, revoke, lost).",
            ["service", "kind"],
            registry=r,
        )
        self.commit_failures = Counter(
            "cdc_commit_failures_total",
            "Offset commits the coordinator rejected.",
            ["service"],
            registry=r,
        )
        self.assigned = Gauge(
            "cdc_assigned_partitions", "Partitions currently assigned.", ["service"], registry=r
        )

    def count(self, topic: str, outcome: str, n: int) -> None:
        if n:
            self.messages.labels(self.service, topic, outcome).inc(n)

    def count_retry(self) -> None:
        self.retries.labels(self.service).inc()

    def count_rebalance(self, kind: str) -> None:
        self.rebalances.labels(self.service, kind).inc()

    def count_commit_failure(self) -> None:
        self.commit_failures.labels(self.service).inc()

    def observe_batch(self, seconds: float) -> None:
        self.batch_duration.labels(self.service).observe(seconds)

    def observe_latency(self, topic: str, seconds: float) -> None:
        self.e2e_latency.labels(self.service, topic).observe(max(seconds, 0.0))

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag.labels(self.service, topic, str(partition)).set(max(lag, 0))

    def drop_lag(self, topic: str, partition: int) -> None:
        with contextlib.suppress(KeyError):
            self.lag.remove(self.service, topic, str(partition))

    def set_assigned(self, n: int) -> None:
        self.assigned.labels(self.service).set(n)
