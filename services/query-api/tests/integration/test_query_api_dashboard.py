"""The dashboard in a real browser: headless Chromium (``/usr/bin/chromium``) loads the page from
the real API (uvicorn on a free port) over the seeded read models, runs its script, and the
figures it renders equal the read models read directly: the lake's report tables through
pyiceberg, the low-stock products through the statistics' reader, and the pipeline panel the
services a scrape reached (two real runtime health servers with known metrics, and a port
nobody listens on).

``--dump-dom`` with a virtual-time budget prints the DOM once the page's requests and timers
have run; the page keeps every figure's raw value in ``data-value`` attributes, so the test
reads numbers, not formatted text.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from analytics_flusher import ItemChange
from analytics_flusher.store._iceberg import (
    ITEMS_CHANGES,
    CatalogConfig,
    ExactlyOnceCommitter,
    item_rows,
    materialize_reports,
    open_catalog,
)
from consumer_runtime import HealthServer, HealthState, Metrics, TopicPartition
from devstack import free_port

from .conftest import PREFIX, READ_KEY, T0_MS, WINDOW_MS, Stack, serve

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# The page's first round of requests takes well under a second here; 10 s of virtual time
# lets its timers run a few more pipeline refreshes (virtual time waits for the network).
_BUDGET_MS = 10_000
# Short, so the panel's first answer does not wait long on the port that never answers.
_SCRAPE_TIMEOUT_S = 1.0
# A cold Chromium start on a busy 2-core machine is a few seconds.
_BROWSER_TIMEOUT_S = 60


def _chromium() -> str:
    for path in (os.environ.get("CHROMIUM"), *CHROMIUM_PATHS, shutil.which("chromium")):
        if path and os.access(path, os.X_OK):
            return path
    pytest.skip("chromium not found: apt-get install chromium")


class _Dom(HTMLParser):
    """Every element's attributes, by id and in document order (attributes only: the page
    keeps its figures there)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append({"tag": tag, **{k: v or "" for k, v in attrs}})

    def by_id(self, id_: str) -> dict[str, str]:
        (found,) = (e for e in self.elements if e.get("id") == id_)
        return found

    def with_attr(self, name: str) -> list[dict[str, str]]:
        return [e for e in self.elements if name in e]


def _rows(dom: _Dom, key: str) -> dict[str, dict[str, str]]:
    """Table rows carrying ``data-<key>``: key -> {field: data-value} of the cells after it."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for e in dom.elements:
        if e["tag"] == "tr":
            current = out.setdefault(e[f"data-{key}"], {}) if f"data-{key}" in e else None
            if current is not None:
                current.update({k: v for k, v in e.items() if k.startswith("data-")})
        elif e["tag"] == "td" and current is not None and "data-field" in e:
            current[e["data-field"]] = e.get("data-value", "")
    return out


def _load(browser: str, urls: list[str]) -> list[_Dom]:
    """Each URL in its own headless Chromium, all at once; the DOM each ended with."""
    with tempfile.TemporaryDirectory() as profiles:
        procs = [
            subprocess.Popen(
                [
                    browser,
                    "--headless",
                    "--no-sandbox",  # a container's root user cannot use the sandbox
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-extensions",
                    "--disable-background-networking",
                    f"--user-data-dir={profiles}/{i}",
                    f"--virtual-time-budget={_BUDGET_MS}",
                    "--dump-dom",
                    url,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for i, url in enumerate(urls)
        ]
        doms = []
        for proc in procs:
            out, _ = proc.communicate(timeout=_BROWSER_TIMEOUT_S)
            assert proc.returncode == 0, out[-2000:]
            dom = _Dom()
            dom.feed(out)
            doms.append(dom)
        return doms


class _Service:
    """A runtime's real health server (``/metrics``, ``/readyz``) with figures set here."""

    def __init__(self, name: str, *, processed: int, dlq: int, lag: int, ready: bool) -> None:
        self.metrics = Metrics(name)
        self.metrics.count("dbserver1.public.orders", "processed", processed)
        self.metrics.count("dbserver1.public.orders", "dlq", dlq)
        self.metrics.lag.labels(name, "dbserver1.public.orders", "0").set(lag)
        self.metrics.e2e_latency.labels(name, "dbserver1.public.orders").observe(0.7)
        state = HealthState(liveness_timeout_s=60)
        state.subscribed = ready
        self.server = HealthServer(state, self.metrics.registry, 0, host="127.0.0.1").start()
        self.url = f"http://127.0.0.1:{self.server.port}/metrics"


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, _Service]]:
    found = {
        "stats-aggregator": _Service("stats-aggregator", processed=120, dlq=3, lag=7, ready=True),
        "search-indexer": _Service("search-indexer", processed=80, dlq=0, lag=0, ready=False),
    }
    yield found
    for svc in found.values():
        svc.server.stop()


@pytest.fixture(scope="module")
def lake_items(stack: Stack) -> None:
    """Order lines for the seeded orders (the shared seed has none), through the flusher's
    committer, and the reports materialized again: top_products gets rows."""
    settings = stack.settings
    assert settings.lake_catalog_uri is not None and settings.lake_warehouse is not None
    config = CatalogConfig.from_env(
        settings.lake_catalog_uri.get_secret_value(), settings.lake_warehouse, env=dict(os.environ)
    )
    catalog = open_catalog(config)
    items = [
        ItemChange(
            item_id=i,
            order_id=i,
            product_id=i % 4 + 1,
            quantity=i,
            unit_price=Decimal("2.50"),
            deleted=False,
            op="c",
            source_ts_ms=T0_MS + i * 60_000,
            offset=i - 1,
            version=f"i{i:030d}{1:031d}",
            event_id=f"item-{i}",
        )
        for i in range(1, 9)
    ]
    ExactlyOnceCommitter(catalog, config.namespace).append(
        ITEMS_CHANGES, item_rows(0, items), {TopicPartition(PREFIX + "order_items", 0): 8}, 1
    )
    result = materialize_reports(catalog, config.namespace, window_ms=WINDOW_MS, top_n=10)
    assert result.written


@pytest.fixture(scope="module")
def hung() -> Iterator[int]:
    """A port that accepts connections and never answers (a stalled process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dashboard(
    stack: Stack, services: dict[str, _Service], lake_items: None, hung: int
) -> Iterator[str]:
    """The API serving the dashboard, its pipeline panel scraping ``services``, a port nobody
    listens on and one that never answers."""
    urls = ",".join(f"{name}={svc.url}" for name, svc in services.items())
    urls += f",analytics-flusher=http://127.0.0.1:{free_port()}/metrics"
    urls += f",event-store-writer=http://127.0.0.1:{hung}/metrics"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIPELINE_METRICS_URLS", urls)
        mp.setenv("PIPELINE_SCRAPE_TIMEOUT_SECONDS", str(_SCRAPE_TIMEOUT_S))
        with serve(stack.settings) as url:
            yield url


def test_pipeline_reports_a_silent_service_down_within_the_timeout(dashboard: str) -> None:
    started = time.monotonic()
    response = httpx.get(f"{dashboard}/v1/pipeline", headers={"X-API-Key": READ_KEY}, timeout=30)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    found = {s["name"]: s for s in response.json()["services"]}
    assert list(found) == [
        "stats-aggregator",
        "search-indexer",
        "analytics-flusher",
        "event-store-writer",
    ]
    assert found["event-store-writer"]["up"] is False
    assert found["event-store-writer"]["error"].startswith("timed out")
    assert found["analytics-flusher"]["up"] is False
    assert found["stats-aggregator"]["processed"] == 120
    # Every service at once, each within its timeout: not one timeout after another.
    assert elapsed < 3 * _SCRAPE_TIMEOUT_S
    anonymous = httpx.get(f"{dashboard}/v1/pipeline", timeout=30)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    page = httpx.get(f"{dashboard}/dashboard", timeout=30)
    assert (
        page.status_code == 200 and "connect-src 'self'" in page.headers["content-security-policy"]
    )
    assert httpx.get(f"{dashboard}/dashboard/assets/nope.js", timeout=30).status_code == 404


def _iceberg(stack: Stack, table: str) -> list[dict[str, Any]]:
    """A report table read directly with pyiceberg (not through the API's reader)."""
    namespace = stack.settings.lake_namespace
    rows: list[dict[str, Any]] = (
        stack.lake.catalog().load_table((namespace, table)).scan().to_arrow().to_pylist()
    )
    return rows


def test_the_dashboard_renders_the_read_models_and_the_pipeline(
    stack: Stack, dashboard: str, services: dict[str, _Service]
) -> None:
    browser = _chromium()
    started = time.monotonic()
    page, no_key, wrong_key = _load(
        browser,
        [
            f"{dashboard}/dashboard#key={READ_KEY}",
            f"{dashboard}/dashboard",
            f"{dashboard}/dashboard#key=not-a-key-of-this-api-at-all",
        ],
    )
    print(f"three pages in headless Chromium: {time.monotonic() - started:.1f}s")

    (root,) = (e for e in page.elements if e["tag"] == "body")
    assert root["data-state"] == "ok", root
    for panel in ("pipeline-error", "sales-error", "top-error", "status-error", "low-stock-error"):
        assert "hidden" in page.by_id(panel), f"{panel} shows an error"

    # Sales per window: the totals of the window_summary table.
    summary = _iceberg(stack, "window_summary")
    assert summary, "the seeded lake has windows"
    revenue = sum((Decimal(str(r["net_revenue"])) for r in summary), Decimal(0))
    orders = sum(int(r["net_orders"]) for r in summary)
    assert Decimal(page.by_id("sales-total-revenue")["data-value"]) == revenue.quantize(
        Decimal("0.01")
    )
    assert int(page.by_id("sales-total-orders")["data-value"]) == orders
    bars = [e for e in page.with_attr("data-label") if e["tag"] == "rect"]
    assert len(bars) >= min(len(summary), 24)

    # Top products: the rows of top_products, in order.
    top = _rows(page, "top-product")
    expected_top = _iceberg(stack, "top_products")
    assert len(expected_top) >= 3, "the order lines give products sales"
    shown = [(int(pid), Decimal(f["revenue"])) for pid, f in top.items()]
    assert shown == [(int(r["product_id"]), Decimal(str(r["revenue"]))) for r in expected_top]

    # Orders by status: status_distribution summed over its windows.
    by_status: defaultdict[str, int] = defaultdict(int)
    for r in _iceberg(stack, "status_distribution"):
        by_status[r["status"]] += int(r["net_orders"])
    statuses = {s: int(f["orders"]) for s, f in _rows(page, "status").items()}
    assert statuses == {s: n for s, n in by_status.items() if n}

    # Low stock: as many as the statistics' read model flags, the lowest first.
    low = stack.stats.low_stock(1000)
    assert low, "the seeded statistics have products low on stock"
    assert int(page.by_id("low-stock-count")["data-value"]) == len(low)
    low_rows = _rows(page, "low-stock-product")
    assert [int(p) for p in low_rows] == [int(r["product_id"]) for r in low[:15]]
    assert [int(f["stock"]) for f in low_rows.values()] == [int(r["stock"]) for r in low[:15]]

    # The pipeline: the two services that answered with their figures, the third down.
    pipeline = _rows(page, "service")
    assert set(pipeline) == {
        "stats-aggregator",
        "search-indexer",
        "analytics-flusher",
        "event-store-writer",
    }
    stats = pipeline["stats-aggregator"]
    assert stats["data-up"] == "true" and stats["ready"] == "true"
    assert (float(stats["lag"]), float(stats["dead_letters"])) == (7, 3)
    assert float(stats["p99_latency_s"]) == 1.0  # 0.7 s falls in the bucket up to 1 s
    search = pipeline["search-indexer"]
    assert search["data-up"] == "true" and search["ready"] == "false"
    assert pipeline["analytics-flusher"]["data-up"] == "false"
    assert pipeline["event-store-writer"]["data-up"] == "false"
    paths = {e["data-series"] for e in page.with_attr("data-series")}
    assert {"stats-aggregator", "search-indexer"} <= paths

    # Without a key: a message, no request made; with a wrong one: the API's refusal.
    (root,) = (e for e in no_key.elements if e["tag"] == "body")
    assert root["data-state"] == "no-key" and "hidden" not in no_key.by_id("no-key")
    assert "hidden" in no_key.by_id("panels")
    (root,) = (e for e in wrong_key.elements if e["tag"] == "body")
    assert root["data-state"] == "key-refused", root
    assert "hidden" not in wrong_key.by_id("key-refused")
