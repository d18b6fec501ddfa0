"""Latency and throughput of the API with 50 client connections, next to the same library call
made directly in the same run and to the HTTP stack's floor (``/livez``, no backend).

The API runs as ``python -m query_api`` (one uvicorn worker, its own process) over the read
models the integration tests seed (PostgreSQL statistics, the search index on the AWS
emulator). The load comes from ``_load`` (keep-alive connections on asyncio streams, tens of
microseconds a request, so the client is not what is measured): 50 connections back to back
(saturation), and a paced load on a schedule (latency from when each request was due). The
machine's two cores are shared by the server, the load, PostgreSQL and the emulator. Search
figures are the emulator's (moto is single-process Python).

    .venv/bin/pytest services/query-api/benchmarks -m benchmark -s -q -p no:randomly
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from devstack import ManagedProcess, free_port, wait_until

from ._load import LoadResult, load
from .conftest import READ_KEY

CLIENTS = 50
STATS_SECONDS = 8.0
SEARCH_SECONDS = 8.0
DIRECT_CALLS = 300
#: The paced loads: the issue's statistics rate, and a search rate the emulator can serve.
STATS_RATE = 800.0
SEARCH_RATE = 15.0
HEADERS = {"X-API-Key": READ_KEY}


def _env(settings: Any) -> dict[str, str]:
    port = free_port()
    return {
        **os.environ,
        "API_PORT": str(port),
        "API_HOST": "127.0.0.1",
        "API_KEYS_FILE": "/nonexistent/query-api-keys",
        "API_KEYS": f"bench:read:{READ_KEY}",
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "DYNAMODB_TABLE": settings.dynamodb_table,
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url,
        "AWS_REGION": settings.aws_region,
        "LOG_LEVEL": "WARNING",
        "DB_POOL_SIZE": "16",
        "DB_MAX_OVERFLOW": "0",
        "BACKEND_THREADS": "16",
    }


class Api:
    def __init__(self, url: str, pid: int) -> None:
        self.url = url
        self.process = psutil.Process(pid)

    def cpu_s(self) -> float:
        """CPU time the server process (every thread) has used so far."""
        times = self.process.cpu_times()
        return float(times.user + times.system)


@pytest.fixture(scope="module")
def api(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    env = _env(stack.settings)
    log = tmp_path_factory.mktemp("query-api") / "query-api.log"
    proc = ManagedProcess("query-api", [sys.executable, "-m", "query_api"], log, env=env)
    proc.start()
    url = f"http://127.0.0.1:{env['API_PORT']}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/livez", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 30, message="query-api up")
    yield Api(url, proc.pid)
    proc.stop()
    print(Path(log).read_text(errors="replace")[-2000:])


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def _direct(call: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def _measure(
    api: Api, path: str, seconds: float, *, connections: int = CLIENTS, rate: float | None = None
) -> tuple[LoadResult, float]:
    """A second of warm-up, then the load: the result and the server's CPU per request."""
    load(api.url, path, HEADERS, connections=connections, seconds=1.0, rate=rate)
    cpu = api.cpu_s()
    result = load(api.url, path, HEADERS, connections=connections, seconds=seconds, rate=rate)
    return result, (api.cpu_s() - cpu) / max(1, len(result.latencies))


def _line(name: str, measured: tuple[LoadResult, float]) -> str:
    result, cpu = measured
    return (
        f"  {name:<44} {result.rate:7,.0f} req/s  p50 {result.pct_ms(0.5):7.1f} ms  "
        f"p99 {result.pct_ms(0.99):7.1f} ms  server CPU {cpu * 1000:.2f} ms/req"
        + (f"  ({result.failed} not 200: {sorted(result.statuses)})" if result.failed else "")
    )


def _direct_line(name: str, direct: list[float]) -> str:
    return (
        f"  {name:<44} p50 {_pct(direct, 0.5) * 1000:.2f} ms  p99 {_pct(direct, 0.99) * 1000:.2f}"
        f" ms  (one call at a time, in this process)"
    )


def test_statistics_read(api: Api, stack: Any) -> None:
    """Saturation with 50 connections (back to back), then 800 requests a second over 50
    connections on a schedule, beside the reader's own call and the HTTP stack's floor
    (``/livez``, no backend) in the same run."""
    path = "/v1/stats/customers/1"
    direct = _direct(lambda: stack.stats.get("customer", 1), DIRECT_CALLS)
    floor = _measure(api, "/livez", STATS_SECONDS)
    saturated = _measure(api, path, STATS_SECONDS)
    paced = _measure(api, path, STATS_SECONDS, rate=STATS_RATE)
    print("\nquery-api statistics read (one uvicorn worker; 2-core machine shared with the load)")
    print(_direct_line("the library call directly", direct))
    print(_line("/livez, 50 connections back to back", floor))
    print(_line("statistics, 50 connections back to back", saturated))
    print(_line(f"statistics, {STATS_RATE:.0f} req/s over 50 connections", paced))
    for result, _ in (saturated, paced):
        assert not result.failed, result.statuses


def test_search(api: Api, stack: Any) -> None:
    """The same for a full-text search on the emulator: saturation, then a paced load the
    emulator (single-process moto) can take."""
    path = "/v1/products/search?q=espresso&limit=10"
    direct = _direct(lambda: stack.search.search("espresso", limit=11), DIRECT_CALLS // 10)
    saturated = _measure(api, path, SEARCH_SECONDS)
    paced = _measure(api, path, SEARCH_SECONDS, rate=SEARCH_RATE)
    print("\nquery-api full-text search (the AWS emulator behind it)")
    print(_direct_line("the library call directly", direct))
    print(_line("search, 50 connections back to back", saturated))
    print(_line(f"search, {SEARCH_RATE:.0f} req/s over 50 connections", paced))
