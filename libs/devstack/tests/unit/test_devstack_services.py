from __future__ import annotations

from typing import Any

from consumer_runtime.metrics_text import bucket_quantile
from devstack._services import SERVICES, ServiceSpec


def test_service_specs_cover_the_four_services() -> None:
    assert [s.name for s in SERVICES] == [
        "event-store-writer",
        "stats-aggregator",
        "search-indexer",
        "analytics-flusher",
    ]
    assert not ServiceSpec("x", "no_such_module_here").available


def test_the_live_p99_follows_recent_observations_not_the_start(tmp_path: Any) -> None:
    from devstack._services import ServiceProcess

    svc = ServiceProcess(SERVICES[0], {}, tmp_path)
    slow_start = {0.1: 0.0, 30.0: 100.0, float("inf"): 100.0}
    assert svc._recent_p99(slow_start) == 30.0
    # 1000 fast observations since: the cumulative p99 would still be 30 s.
    now = {0.1: 1000.0, 30.0: 1100.0, float("inf"): 1100.0}
    assert bucket_quantile(now.items(), 0.99) == 30.0
    assert svc._recent_p99(now) == 0.1
    # Nothing new: the last figure stays.
    assert svc._recent_p99(now) == 0.1


def test_p99_since_a_baseline_leaves_out_what_came_before_it(tmp_path: Any) -> None:
    from devstack._services import ServiceProcess

    svc = ServiceProcess(SERVICES[0], {}, tmp_path)
    # The start: 100 records at 30 s. Since then: 100 more, all within 1.5 s.
    start = {1.5: 0.0, 30.0: 100.0, float("inf"): 100.0}
    svc._latency_seen = {1.5: 100.0, 30.0: 200.0, float("inf"): 200.0}
    assert svc.p99_since() == 30.0  # the whole run holds the start's
    assert svc.p99_since(start) == 1.5
    assert svc.latency_seen == svc._latency_seen and svc.latency_seen is not svc._latency_seen


def test_a_service_that_reported_no_lag_yet_has_not_caught_up_with_the_start() -> None:
    """A member that joined its group and wrote its first batches, but whose lag is not known
    yet, reads as lag 0: counting it as caught up would count its start-up backlog as the
    steady state's peak."""
    from devstack._peaks import caught_up_with_start
    from devstack._services import ServiceStatus

    started = ServiceStatus(ready=True, processed=3293.0, lag=0.0, lag_reported=False)
    assert not caught_up_with_start(started)
    assert caught_up_with_start(ServiceStatus(ready=True, processed=3293.0, lag_reported=True))
    behind = ServiceStatus(ready=True, processed=3293.0, lag=11_586.0, lag_reported=True)
    assert not caught_up_with_start(behind)
    assert not caught_up_with_start(ServiceStatus(ready=True, processed=10.0, lag_reported=True))


def test_peaks_count_from_shortly_after_a_service_caught_up() -> None:
    """The batches written before a service caught up are reported durable a batch or two
    later by a sink that writes in the background: their latency is the start's, not a peak."""
    from types import SimpleNamespace

    from devstack._peaks import Peaks
    from devstack._services import ServiceStatus

    peaks = Peaks()
    svc = SimpleNamespace(name="svc", latency_seen={1.0: 5.0})

    def refresh(at: float, lag: float, p99: float, processed: float = 5000.0) -> None:
        status = ServiceStatus(
            ready=True, processed=processed, lag=lag, lag_reported=True, latency_p99_s=p99
        )
        peaks.track(svc, status, at)  # type: ignore[arg-type]

    refresh(3.0, 4000, 10.0)  # still reading the start's backlog
    refresh(6.0, 128, 10.0)  # caught up; the snapshot's rows are still being reported
    refresh(6.5, 100, 10.0)
    refresh(7.5, 90, 1.5)
    assert peaks.largest("svc") is None and peaks.caught_up_at("svc") is None
    refresh(8.0, 300, 1.0)  # settled: counted from the next refresh
    refresh(8.5, 700, 2.0)
    refresh(9.0, 50, 0.5)
    assert peaks.caught_up_at("svc") == 6.0
    assert peaks.largest("svc") == (700, 2.0)
