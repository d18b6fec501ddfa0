"""The flusher's own Prometheus metrics, served by the runtime next to its ``cdc_*`` ones, and
the log line of each recorded sweep (which one of them counts).

The sink exposes the registry as ``metrics_registry``; the runtime registers it on its
``/metrics`` (``consumer_runtime``'s sink protocol).
"""

from __future__ import annotations

import structlog
from prometheus_client import CollectorRegistry, Counter

from analytics_flusher.domain import Part

SERVICE = "analytics-flusher"

_log = structlog.get_logger("analytics_flusher")


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
        self.sweeps = Counter(
            "lake_sweeps_recorded_total",
            "Sweeps written to the lake: window parts holding the last read of a table in a "
            "Debezium snapshot, whose sweep version deletes the table's rows below it at query "
            "time. A redelivered marker is counted again. By table.",
            ["service", "table"],
            registry=self.registry,
        )

    def count_skewed(self, topic: str, partition: int, n: int, *, bound_ms: int) -> None:
        """Count and log ``n`` changes of one batch ahead of the clock's bound."""
        if not n:
            return
        self.clock_skewed.labels(SERVICE, topic).inc(n)
        _log.warning(
            "changes ahead of the clock; they do not move the watermark",
            topic=topic,
            partition=partition,
            count=n,
            bound_ms=bound_ms,
        )

    def record_sweeps(self, part: Part) -> None:
        """Log and count the sweeps of a part whose objects are all written (durable)."""
        for table, (version, offset) in sorted(part.sweeps.items()):
            self.sweeps.labels(SERVICE, table).inc()
            _log.info(
                "sweep recorded",
                table=table,
                sweep_version=version,
                topic=part.topic,
                partition=part.partition,
                offset=offset,
                window_start=part.window_start,
            )
