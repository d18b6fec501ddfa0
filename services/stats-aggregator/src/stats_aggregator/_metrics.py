"""The aggregator's own Prometheus metrics, served by the runtime next to its ``cdc_*`` ones.

The sink exposes the registry as ``metrics_registry``; the runtime registers it on its
``/metrics`` (``consumer_runtime``'s sink protocol).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

SERVICE = "stats-aggregator"


class StatsMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self.clock_skewed = Counter(
            "stats_clock_skewed_records_total",
            "User events whose timestamp was more than MAX_CLOCK_SKEW_SECONDS ahead of the "
            "processing clock: counted with their own time, but the activity watermark (the "
            "scores' as-of) went no further than now + MAX_CLOCK_SKEW_SECONDS. By topic.",
            ["service", "topic"],
            registry=self.registry,
        )

        self.swept = Counter(
            "stats_swept_rows_total",
            "Rows of a source table deleted by a sweep: live in the read model with a version "
            "below the sweep version of a Debezium snapshot's last read of the table (neither "
            "read by that snapshot nor changed after it, so deleted at the source while the "
            "connector had no offsets). By source table.",
            ["service", "table"],
            registry=self.registry,
        )

    def count_swept(self, table: str, n: int) -> None:
        self.swept.labels(SERVICE, table).inc(n)

    def count_skewed(self, topic: str, n: int) -> None:
        if n:
            self.clock_skewed.labels(SERVICE, topic).inc(n)
