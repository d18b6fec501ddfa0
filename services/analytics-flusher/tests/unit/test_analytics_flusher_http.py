"""The optional HTTP sink: retries, no retry on 4xx, idempotency key, and its wiring."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from analytics_flusher import Decoder, HttpSinkUnavailable, LakeSink, WindowConfig
from analytics_flusher._http import HttpPoster
from analytics_flusher._metrics import Buffered, SinkGauges
from consumer_runtime import CommitStrategy
from consumer_runtime.testing import SinkHarness
from prometheus_client import CollectorRegistry


class FakeApi:
    def __init__(self, statuses: list[int | OSError]) -> None:
        self.statuses = statuses
        self.calls: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        self.calls.append((url, orjson.loads(body), headers))
        status = self.statuses.pop(0) if self.statuses else 200
        if isinstance(status, OSError):
            raise status
        return status


def poster(api: FakeApi, attempts: int = 4) -> HttpPoster:
    return HttpPoster("http://api/x", max_attempts=attempts, transport=api, sleep=lambda _s: None)


def test_retries_5xx_and_connection_errors_then_succeeds() -> None:
    api = FakeApi([503, OSError("refused"), 200])
    assert poster(api).post("k1", {"a": 1})
    assert len(api.calls) == 3
    assert all(h["Idempotency-Key"] == "k1" for _, _, h in api.calls)


def test_requests_are_counted_by_outcome_and_served_as_a_counter() -> None:
    p = poster(FakeApi([503, OSError("refused"), 200, 422]))
    assert p.post("k1", {}) and not p.post("k2", {})
    assert (p.sent, p.rejected, p.failed) == (1, 1, 2)
    registry = CollectorRegistry()
    registry.register(SinkGauges(lambda: [Buffered("parquet_windows", 7, 512, 2)], p))
    value = registry.get_sample_value
    labels = {"service": "analytics-flusher"}
    assert value("cdc_http_sink_requests_total", {**labels, "outcome": "accepted"}) == 1
    assert value("cdc_http_sink_requests_total", {**labels, "outcome": "rejected"}) == 1
    assert value("cdc_http_sink_requests_total", {**labels, "outcome": "failed"}) == 2
    buffer = {**labels, "buffer": "parquet_windows"}
    assert value("cdc_sink_open_windows", buffer) == 2
    assert value("cdc_sink_buffered_rows", buffer) == 7
    assert value("cdc_sink_buffered_bytes", buffer) == 512


def test_4xx_is_not_retried() -> None:
    api = FakeApi([422])
    p = poster(api)
    assert not p.post("k", {})
    assert len(api.calls) == 1 and p.rejected == 1


def test_gives_up_after_the_last_attempt() -> None:
    api = FakeApi([500] * 10)
    with pytest.raises(HttpSinkUnavailable):
        poster(api, attempts=3).post("k", {})
    assert len(api.calls) == 3


def test_sink_posts_one_summary_per_part(cdc: SimpleNamespace, store: Any) -> None:
    api = FakeApi([500] * 4)  # the first part fails one whole round, then goes through
    sink = LakeSink(store, WindowConfig(), http=poster(api), idle_thread=False)
    h = SinkHarness(sink, Decoder(), strategy=CommitStrategy.COMMIT_AFTER_FLUSH)
    h.produce(cdc.ORDERS, [cdc.order(1), cdc.order(2)])
    h.run_until_idle()
    h.shutdown()
    keys = {c[2]["Idempotency-Key"] for c in api.calls}
    assert len(keys) == 1
    (key,) = keys
    assert f"{key}.parquet" in store.objects
    doc = api.calls[-1][1]
    assert doc["events"] == 2
    assert doc["sales"][0]["net_orders"] == 2
