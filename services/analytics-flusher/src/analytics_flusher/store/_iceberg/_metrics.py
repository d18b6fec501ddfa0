"""The Iceberg writer's Prometheus metrics, in the sink's registry (served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["SERVICE", "WriterMetrics"]

SERVICE = "analytics-flusher"


class WriterMetrics:
    """The Iceberg commits' figures, in the sink's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commit_seconds = Histogram(
            "lake_iceberg_commit_seconds",
            "Time to commit one changes table (write its data files, swap its metadata).",
            ["service", "table"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=registry,
        )
        self.freshness = Histogram(
            "lake_iceberg_freshness_seconds",
            "Age of each partition's oldest change when its commit lands (source.ts_ms to "
            "queryable in the changes table; every other change of the commit is younger).",
            ["service", "table"],
            buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300),
            registry=registry,
        )
        self.rows = Counter(
            "lake_iceberg_rows_committed_total",
            "Rows appended to the changes tables (rows a replay already recorded excluded).",
            ["service", "table"],
            registry=registry,
        )
        self.nulled = Counter(
            "lake_iceberg_values_nulled_total",
            "Values written as null because their column took another type meanwhile (another "
            "process added it first); refused values are dead-lettered instead, not counted here.",
            ["service", "table"],
            registry=registry,
        )
        self.skipped = Counter(
            "lake_iceberg_recorded_skipped_total",
            "Changes not buffered because the table already records their offsets (a replay).",
            ["service", "table"],
            registry=registry,
        )
