"""Counters of the index writes (Prometheus), in a registry the caller chooses.

A stale or duplicate write (the index already holds that version or a newer one) is counted
here, never raised: it is what a replay, a Debezium re-emit or a zombie consumer produces.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

__all__ = ["IndexMetrics"]


class IndexMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.products = Counter(
            "search_index_products_total",
            "Folded product changes by outcome: written (upsert), deleted, stale (a newer version "
            "is indexed), duplicate (this version is indexed already), below_sweep (older than the "
            "last re-snapshot's sweep: superseded, not applied).",
            ["outcome"],
            registry=r,
        )
        self.postings = Counter(
            "search_index_postings_total",
            "Posting writes by operation (put, remove) and outcome (written, skipped: a newer "
            "version holds the posting).",
            ["op", "outcome"],
            registry=r,
        )
        self.conflicts = Counter(
            "search_index_conflicts_total",
            "Product writes that found the product item changed by another writer (a newer or "
            "older change, or a pending posting recorded after the read) and were re-read.",
            registry=r,
        )
        self.fast_misses = Counter(
            "search_index_fast_path_misses_total",
            "Changes written unread on the assumption that their tokens did not change, whose "
            "condition failed (tokens changed, a new or deleted product, pending entries, a "
            "superseded change): planned again from the item the cancellation returned.",
            registry=r,
        )
        self.txn_retries = Counter(
            "search_index_transaction_retries_total",
            "Product units sent again because their transaction met a conflict or throttling.",
            registry=r,
        )
        self.repairs = Counter(
            "search_index_posting_repairs_total",
            "Postings stated again only because a pending entry named them: an interrupted, "
            "timed-out or concurrent write may have left them in any state.",
            registry=r,
        )

        self.swept = Counter(
            "search_index_swept_products_total",
            "Products deleted by a sweep: live products stored at a version below a snapshot's "
            "sweep version (neither read by that snapshot nor changed after it: gone from the "
            "source). Also counted in search_index_products_total{outcome=deleted}.",
            registry=r,
        )

    def product(self, outcome: str) -> None:
        self.products.labels(outcome).inc()

    def posting(self, op: str, written: bool) -> None:
        self.postings.labels(op, "written" if written else "skipped").inc()

    def value(self, name: str, **labels: str) -> float:
        sample = self.registry.get_sample_value(name, labels)
        return 0.0 if sample is None else sample
