"""The flusher's own Prometheus metrics, served by the runtime next to its ``cdc_*`` ones.

The sink exposes the registry as ``metrics_registry``; the runtime registers it on its
``/metrics`` (``consumer_runtime``'s sink protocol).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

SERVICE = "analytics-flusher"


class LakeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self.clock_skewed = Counter(
            "lake_clock_skewed_records_total",
            "Changes whose event time (source.ts_ms) was more than MAX_CLOCK_SKEW_SECONDS ahead "
            "of the processing clock: filed under their own window; they do not move the "
            "partition's watermark. By topic.",
            ["service", "topic"],
            registry=self.registry,
        )

    def count_skewed(self, topic: str, n: int) -> None:
        if n:
            self.clock_skewed.labels(SERVICE, topic).inc(n)
