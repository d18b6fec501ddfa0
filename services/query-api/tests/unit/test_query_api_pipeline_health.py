"""The pipeline panel's figures from a service's scrapes (pure)."""

from __future__ import annotations

import pytest
from consumer_runtime.metrics_text import RuntimeFigures
from query_api._pipeline_health import Scrape, service_health
from query_api.pipeline import PipelineSettings

INF = float("inf")


def _scrape(at: float, processed: float, buckets: dict[float, float], **kw: float) -> Scrape:
    figures = RuntimeFigures(
        processed=processed, latency_buckets=buckets, lag_reported="lag" in kw, **kw
    )
    return Scrape(at, figures, ready=True)


def test_throughput_and_p99_are_over_the_window_not_since_the_start() -> None:
    scrapes = [
        # A slow start: 100 records at 30 s end to end.
        _scrape(0.0, 100, {1.0: 0, 30.0: 100, INF: 100}),
        # Then 600 records in 20 s, all within 1 s.
        _scrape(40.0, 100, {1.0: 0, 30.0: 100, INF: 100}),
        _scrape(50.0, 400, {1.0: 300, 30.0: 400, INF: 400}),
        _scrape(60.0, 700, {1.0: 600, 30.0: 700, INF: 700}, lag=12, dlq=2, retries=1),
    ]
    health = service_health("svc", "http://x/metrics", scrapes, window_s=30)
    assert health.up and health.ready
    assert health.throughput_per_s == pytest.approx(600 / 20)  # the scrapes at 40 s and 60 s
    assert health.p99_latency_s == 1.0  # the start's 30 s is outside the window
    assert (health.lag, health.dead_letters, health.retries, health.processed) == (12, 2, 1, 700)


def test_a_quiet_service_keeps_its_last_p99_and_shows_no_throughput() -> None:
    scrapes = [
        _scrape(0.0, 0, {}),
        _scrape(10.0, 50, {2.5: 50, INF: 50}),
        _scrape(100.0, 50, {2.5: 50, INF: 50}),
        _scrape(110.0, 50, {2.5: 50, INF: 50}),
    ]
    health = service_health("svc", "u", scrapes, window_s=30)
    assert health.throughput_per_s == 0.0
    assert health.p99_latency_s == 2.5


def test_a_restart_counts_again_from_the_new_process() -> None:
    scrapes = [
        _scrape(0.0, 1000, {0.5: 1000, INF: 1000}),
        _scrape(10.0, 10, {0.5: 0, 5.0: 10, INF: 10}),  # counters fell: a new process
        _scrape(20.0, 110, {0.5: 0, 5.0: 110, INF: 110}),
    ]
    health = service_health("svc", "u", scrapes, window_s=30)
    assert health.throughput_per_s == pytest.approx(10.0)  # never negative
    assert health.p99_latency_s == 5.0


def test_a_service_whose_last_scrape_failed_is_down_with_no_figures() -> None:
    scrapes = [_scrape(0.0, 10, {1.0: 10, INF: 10}), Scrape(5.0, None, False, "timed out")]
    health = service_health("svc", "u", scrapes, window_s=30)
    assert not health.up and not health.ready and health.error == "timed out"
    assert health.lag is None and health.throughput_per_s is None
    assert health.p99_latency_s is None and health.dead_letters is None


def test_a_service_that_reported_no_lag_yet_shows_it_as_unknown_not_as_zero() -> None:
    health = service_health("svc", "u", [_scrape(0.0, 5, {0.25: 5, INF: 5})], window_s=30)
    assert health.up and health.lag is None
    caught_up = service_health("svc", "u", [_scrape(0.0, 5, {0.25: 5, INF: 5}, lag=0)], 30)
    assert caught_up.lag == 0


def test_one_scrape_gives_figures_but_no_throughput_yet() -> None:
    health = service_health("svc", "u", [_scrape(0.0, 5, {0.25: 5, INF: 5})], window_s=30)
    assert health.throughput_per_s is None and health.p99_latency_s == 0.25


def test_metrics_urls_setting_is_name_equals_url_pairs() -> None:
    settings = PipelineSettings(
        pipeline_metrics_urls=" a=http://127.0.0.1:9001/metrics, b=http://h:9002/metrics ,"
    )
    assert settings.pipeline_metrics_urls == {
        "a": "http://127.0.0.1:9001/metrics",
        "b": "http://h:9002/metrics",
    }
    with pytest.raises(ValueError, match="name=http"):
        PipelineSettings(pipeline_metrics_urls="a:9001")


def test_metrics_urls_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_METRICS_URLS", "store=http://127.0.0.1:1/metrics")
    assert PipelineSettings().pipeline_metrics_urls == {"store": "http://127.0.0.1:1/metrics"}
