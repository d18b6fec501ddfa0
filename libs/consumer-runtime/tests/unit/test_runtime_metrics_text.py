from __future__ import annotations

import pytest
from consumer_runtime._metrics import Metrics
from consumer_runtime.metrics_text import bucket_quantile, parse_runtime_metrics, recent_buckets
from prometheus_client import generate_latest


def test_quantile_reads_the_bucket_holding_the_rank() -> None:
    buckets = [(0.1, 50.0), (0.5, 98.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert bucket_quantile(buckets, 0.5) == 0.1
    assert bucket_quantile(buckets, 0.99) == 1.0
    assert bucket_quantile([], 0.99) is None
    assert bucket_quantile([(float("inf"), 0.0)], 0.99) is None


def test_quantile_merges_label_sets() -> None:
    # Two topics' histograms of one service add up bucket by bucket.
    buckets = [(0.1, 10.0), (1.0, 10.0), (0.1, 0.0), (1.0, 90.0)]
    assert bucket_quantile(buckets, 0.5) == 1.0


def test_recent_buckets_are_the_observations_between_two_scrapes() -> None:
    before = {0.1: 90.0, 1.0: 99.0, float("inf"): 100.0}
    now = {0.1: 190.0, 1.0: 199.0, float("inf"): 300.0}
    # Since the previous scrape: 100 fast, none in (0.1, 1], 100 slower than 1 s.
    assert recent_buckets(before, now) == {0.1: 100.0, 1.0: 100.0, float("inf"): 200.0}
    assert bucket_quantile(recent_buckets(before, now).items(), 0.99) == float("inf")
    # A restarted process starts its counters again: take them as they are.
    assert recent_buckets(before, {0.1: 5.0, 1.0: 5.0, float("inf"): 5.0})[0.1] == 5.0


def test_the_runtime_s_own_exposition_reads_back_summed() -> None:
    metrics = Metrics("svc")
    metrics.count("orders", "processed", 7)
    metrics.count("items", "processed", 3)
    metrics.count("orders", "dlq", 2)
    metrics.count("orders", "skipped", 1)
    metrics.count_retry()
    metrics.lag.labels("svc", "orders", "0").set(4)
    metrics.lag.labels("svc", "orders", "1").set(5)
    metrics.lag.labels("svc", "items", "0").set(1)
    metrics.e2e_latency.labels("svc", "orders").observe(0.3)
    metrics.e2e_latency.labels("svc", "items").observe(2.2)

    figures = parse_runtime_metrics(generate_latest(metrics.registry).decode())

    assert (figures.processed, figures.dlq, figures.skipped, figures.retries) == (10, 2, 1, 1)
    assert figures.lag == 10 and figures.lag_by_topic == {"orders": 9, "items": 1}
    assert figures.lag_reported
    # Both topics' observations, in cumulative buckets: one by 0.5 s, both by 2.5 s.
    assert figures.latency_buckets[0.5] == 1 and figures.latency_buckets[2.5] == 2
    assert bucket_quantile(figures.latency_buckets.items(), 0.99) == 2.5


def test_a_member_with_no_lag_reported_has_an_unknown_lag_not_zero() -> None:
    metrics = Metrics("svc")
    metrics.count("orders", "processed", 7)
    assert not parse_runtime_metrics(generate_latest(metrics.registry).decode()).lag_reported
    metrics.lag.labels("svc", "orders", "0").set(0)
    figures = parse_runtime_metrics(generate_latest(metrics.registry).decode())
    assert figures.lag_reported and figures.lag == 0


def test_a_page_that_is_no_exposition_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_runtime_metrics("<html>not metrics</html>")
