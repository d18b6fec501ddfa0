"""What the operator commands know about the four services, without importing them.

The CLI never imports a service (libraries never import services), so the facts a replay needs
are written down here: each service's commit strategy (from its ``__main__``), its default
topics (from its settings) and why re-reading records is harmless for its sink (from its
README). A unit test compares this table with the services' code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from consumer_runtime import CommitStrategy


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    strategy: CommitStrategy
    # Default KAFKA_TOPICS; an entry starting with ``^`` is a pattern.
    topics: tuple[str, ...]
    sink: str
    replay_safety: str

    @property
    def sink_managed(self) -> bool:
        return self.strategy is CommitStrategy.SINK_MANAGED

    def subscribes_to(self, topic: str) -> bool:
        return any(
            re.fullmatch(t[1:], topic) if t.startswith("^") else t == topic for t in self.topics
        )

    def matching(self, topics: Iterable[str]) -> list[str]:
        return sorted(t for t in topics if self.subscribes_to(t))


_SHOP = tuple(f"dbserver1.public.{t}" for t in ("customers", "products", "orders", "order_items"))

SERVICES: dict[str, ServiceInfo] = {
    s.name: s
    for s in (
        ServiceInfo(
            "event-store-writer",
            CommitStrategy.SINK_MANAGED,
            (r"^dbserver1\.public\..*", "user-events"),
            "PostgreSQL event store (offsets in its consumer_offsets table)",
            "every change carries a stable event_id (the same for a Kafka redelivery and a "
            "Debezium re-emit) and an id already stored is dropped (the primary key of "
            "cdc_event_ids; user events: INSERT ... ON CONFLICT (event_id) DO NOTHING), so "
            "re-read records are counted as duplicates and add no row",
        ),
        ServiceInfo(
            "stats-aggregator",
            CommitStrategy.SINK_MANAGED,
            (*_SHOP, "user-events"),
            "PostgreSQL statistics read model (offsets in its consumer_offsets table)",
            "every key keeps the source position (LSN) of its last applied change and a change "
            "at or before it is skipped; user events count once by event_id (user_event_ids); "
            "scores are computed as of the latest event time seen, never the wall clock",
        ),
        ServiceInfo(
            "search-indexer",
            CommitStrategy.COMMIT_AFTER_FLUSH,
            ("dbserver1.public.products",),
            "DynamoDB product search index (offsets committed to Kafka after each write)",
            "writes are version-guarded by the change's source version "
            "(cdc_events.source_version, never the Kafka offset): an item or posting is written "
            "only over an older version, so a re-read or dead-letter-replayed change is skipped "
            "as a duplicate or as stale, also after the topic was re-created",
        ),
        ServiceInfo(
            "analytics-flusher",
            CommitStrategy.COMMIT_AFTER_FLUSH,
            ("dbserver1.public.orders", "dbserver1.public.order_items"),
            "S3 data lake (offsets committed to Kafka after the window parts are written)",
            "a window part is a pure function of its offset range: the same range is rewritten "
            "with byte-identical objects under the same keys, a replay that cuts windows "
            "elsewhere writes new keys, and the exact totals come from the latest image of each "
            "row by Kafka offset (the image query), so nothing is counted twice. The per-window "
            "summary reports (sales/, customer_metrics/, ...) are deltas: after a replay, parts "
            "with overlapping offset ranges double-count when summed, so take exact figures "
            "from the image query",
        ),
    )
}


def service(name: str) -> ServiceInfo:
    try:
        return SERVICES[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r} (known: {', '.join(SERVICES)})") from None
