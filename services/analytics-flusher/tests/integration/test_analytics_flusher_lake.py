"""The flusher on the embedded stack: real Debezium, moto S3, the shop simulator.

After each run the DuckDB queries over the objects must give exactly the source's totals per
order day, product, customer and status, and every key written more than once (the bucket is
versioned) must have held the same bytes each time.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from devstack import ShopSimulator
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.timeout(240)

# A run of a few seconds at 100 tx/s: a few hundred orders over several 3 s windows.
RUN_S = 8.0


@pytest.mark.parametrize(
    "env",
    [
        {},
        # About 80 of the shop's rows: the open windows are forced out by bytes again and again.
        {"MAX_OPEN_BYTES": "65536"},
    ],
    ids=["defaults", "tiny-max-open-bytes"],
)
def test_totals_match_the_source(
    flushers: Any,
    lake: Any,
    kit: Any,
    shop_simulator: ShopSimulator,
    source_postgres: Any,
    kafka_group: str,
    env: dict[str, str],
) -> None:
    with _AnalyticsApi() as api:
        proc = flushers.start("flusher", kafka_group, HTTP_SINK_URL=api.url, **env)
        with _Scraper(int(proc.env["HEALTH_PORT"])) as scraped:
            shop_simulator.run(duration=RUN_S)
            totals = kit.converge(lake, source_postgres)
        assert sum(d.orders for d in totals["daily_sales"].values()) > 0
        _check_metrics(scraped, api)
    assert proc.stop(timeout=30) == 0
    forced = proc.log_path.read_text(errors="replace").count("past MAX_OPEN_BYTES")
    assert (forced > 0) == bool(env), forced
    keys = lake.versions()
    reports = {k.split("/")[1] for k in keys}
    assert {"orders", "order_items", "sales", "customer_metrics", "product_sales"} <= reports
    assert all("/dt=" in k and "/hour=" in k and "/window=" in k for k in keys)
    lake.assert_rewrites_identical()
    assert lake.assert_iceberg_exactly_once() > 0


class _AnalyticsApi:
    """A real HTTP server standing for the analytics API: accepts every summary (200)."""

    def __init__(self) -> None:
        self.posts = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                api.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/summaries"

    def __enter__(self) -> _AnalyticsApi:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Scraper:
    """Scrapes the process's /metrics twice a second while the test runs; keeps each
    sample's highest value (gauges that rise and fall) and its last one."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.high: dict[tuple[str, frozenset[tuple[str, str]]], float] = defaultdict(float)
        self.last: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._scrape()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._scrape()

    def _scrape(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as resp:
                text = resp.read().decode()
        except OSError:
            return  # not serving yet
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                key = (s.name, frozenset(s.labels.items()))
                self.high[key] = max(self.high[key], s.value)
                self.last[key] = s.value

    def value(self, name: str, *, high: bool = False, **labels: str) -> float:
        """Summed over the other labels."""
        samples = self.high if high else self.last
        want = set(labels.items())
        return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def _check_metrics(scraped: _Scraper, api: _AnalyticsApi) -> None:
    """The process served its own figures: the buffers it held, its S3 calls, its HTTP sink."""
    svc = {"service": "analytics-flusher"}
    assert scraped.value("cdc_sink_open_windows", high=True, buffer="parquet_windows", **svc) > 0
    assert scraped.value("cdc_sink_buffered_bytes", high=True, buffer="parquet_windows", **svc) > 0
    assert scraped.value("cdc_sink_buffered_rows", high=True, buffer="iceberg", **svc) > 0
    puts = scraped.value(
        "cdc_aws_call_duration_seconds_count", aws_service="s3", operation="PutObject", **svc
    )
    assert puts > 0
    accepted = scraped.value("cdc_http_sink_requests_total", outcome="accepted", **svc)
    assert 0 < accepted <= api.posts
    assert scraped.value("cdc_http_sink_requests_total", outcome="failed", **svc) == 0


def test_sigkill_mid_window(
    flushers: Any,
    lake: Any,
    kit: Any,
    shop_simulator: ShopSimulator,
    source_postgres: Any,
    kafka_group: str,
) -> None:
    proc = flushers.start("flusher-0", kafka_group)
    # Long enough for two kills, each followed by a group re-join (session timeout 6 s).
    with kit.Background(lambda: shop_simulator.run(duration=24.0)):
        for i in range(2):
            kit.wait_for_write(proc)  # it has written parts and holds open windows
            time.sleep(1.0)
            proc.kill()  # SIGKILL: open windows lost, uncommitted records read again
            proc = flushers.start(f"flusher-{i + 1}", kafka_group)
    kit.converge(lake, source_postgres)
    proc.stop(timeout=30)
    assert lake.assert_rewrites_identical() > 0  # the replays did rewrite objects
    # The replays read changes the tables had committed; none is in them twice.
    assert lake.assert_iceberg_exactly_once() > 0


def test_s3_outage(
    flushers: Any,
    lake: Any,
    kit: Any,
    shop_simulator: ShopSimulator,
    source_postgres: Any,
    aws_emulator: Any,
    kafka_group: str,
) -> None:
    proc = flushers.start("flusher", kafka_group)
    with kit.Background(lambda: shop_simulator.run(duration=RUN_S + 10)):
        kit.wait_for_write(proc)
        aws_emulator.process.pause()
        try:
            time.sleep(10.0)
        finally:
            aws_emulator.process.resume()
    kit.converge(lake, source_postgres)
    assert proc.running
    assert proc.stop(timeout=30) == 0
    lake.assert_rewrites_identical()


def test_a_lake_with_one_report_written_and_not_the_other_has_no_totals_yet(
    lake: Any, aws_emulator: Any, s3_bucket: str
) -> None:
    """The flushers write the two image reports independently: while ``order_items`` has an
    object and ``orders`` none, the totals are "nothing yet" (the convergence check and
    ``cdc verify`` wait or report it), not DuckDB's "No files found" from a query over the
    missing report."""
    s3 = aws_emulator.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="reports/order_items/dt=2026-01-01/a.parquet", Body=b"x")
    assert lake.totals() == {}
