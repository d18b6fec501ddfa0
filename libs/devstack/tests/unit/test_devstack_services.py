from __future__ import annotations

from devstack._services import SERVICES, ServiceSpec, _quantile


def test_quantile_reads_the_bucket_holding_the_rank() -> None:
    buckets = [(0.1, 50.0), (0.5, 98.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert _quantile(buckets, 0.5) == 0.1
    assert _quantile(buckets, 0.99) == 1.0
    assert _quantile([], 0.99) is None
    assert _quantile([(float("inf"), 0.0)], 0.99) is None


def test_quantile_merges_label_sets() -> None:
    # Two topics' histograms of one service add up bucket by bucket.
    buckets = [(0.1, 10.0), (1.0, 10.0), (0.1, 0.0), (1.0, 90.0)]
    assert _quantile(buckets, 0.5) == 1.0


def test_service_specs_cover_the_four_services() -> None:
    assert [s.name for s in SERVICES] == [
        "event-store-writer",
        "stats-aggregator",
        "search-indexer",
        "analytics-flusher",
    ]
    assert not ServiceSpec("x", "no_such_module_here").available
