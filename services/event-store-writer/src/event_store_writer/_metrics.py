"""The writer's own Prometheus metrics, served by the runtime next to its ``cdc_*`` metrics.

The sink exposes the registry as ``metrics_registry``; the runtime registers it on its
``/metrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

SERVICE = "event-store-writer"


class StoreMetrics:
    """The writer's own Prometheus metrics (next to the runtime's ``cdc_*`` ones)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = CollectorRegistry() if registry is None else registry
        self.registry = r
        self.appended = Counter(
            "event_store_rows_appended_total",
            "Rows appended to the event store, by table.",
            ["service", "table"],
            registry=r,
        )
        self.duplicates = Counter(
            "event_store_duplicates_total",
            "Records absorbed because their event_id was already stored (Kafka redelivery, "
            "Debezium re-emit), by table.",
            ["service", "table"],
            registry=r,
        )
        self.partitions_created = Counter(
            "event_store_partitions_created_total",
            "Monthly partitions of cdc_events created by this process.",
            ["service"],
            registry=r,
        )

    def count(self, table: str, appended: int, duplicates: int) -> None:
        if appended:
            self.appended.labels(SERVICE, table).inc(appended)
        if duplicates:
            self.duplicates.labels(SERVICE, table).inc(duplicates)
