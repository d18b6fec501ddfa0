"""Latency and throughput of the API under 50 concurrent clients, next to the same library call
made directly in the same run.

The API runs as ``python -m query_api`` (one uvicorn worker, its own process) over the read
models the integration tests seed (PostgreSQL statistics, the search index on the AWS
emulator). 50 asyncio tasks, each one client connection (httpx, keep-alive), send requests back
to back for a fixed time; p50/p99 are over every request, requests/s over the wall time. The
direct figures are the reader's call in this process, one at a time. The load generator shares
the machine (and its cores) with the server and the stores, so the server's own capacity is
higher than measured. Search figures are the emulator's (moto is single-process Python).

    .venv/bin/pytest services/query-api/benchmarks -m benchmark -s -q -p no:randomly
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from devstack import ManagedProcess, free_port, wait_until

from .conftest import READ_KEY

CLIENTS = 50
STATS_SECONDS = 8.0
SEARCH_SECONDS = 8.0
DIRECT_CALLS = 300


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


async def _load(
    url: str, path: str, params: dict[str, Any], seconds: float, clients: int = CLIENTS
) -> tuple[list[float], list[int]]:
    """Latencies of the answered requests, and the statuses of those that were not 200."""
    latencies: list[float] = []
    errors: list[int] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": READ_KEY}) as c:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                resp = await c.get(path, params=params)
                latencies.append(time.perf_counter() - start)
                if resp.status_code != 200:
                    errors.append(resp.status_code)

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, errors


def _run(
    api: Api, path: str, params: dict[str, Any], seconds: float, clients: int = CLIENTS
) -> tuple[list[float], list[int], float]:
    """Warm up for a second, then load for ``seconds`` with ``clients``: latencies, failures,
    and the server's CPU time per request."""
    asyncio.run(_load(api.url, path, params, 1.0, clients))
    cpu = api.cpu_s()
    latencies, errors = asyncio.run(_load(api.url, path, params, seconds, clients))
    return latencies, errors, (api.cpu_s() - cpu) / max(1, len(latencies))


def _report(
    name: str,
    run: tuple[list[float], list[int], float],
    seconds: float,
    direct: list[float],
    clients: int = CLIENTS,
) -> None:
    latencies, errors, cpu = run
    print(
        f"\n{name}: {clients} clients, {len(latencies)} requests in {seconds:.0f} s "
        f"({len(errors)} not 200: {sorted(set(errors))}), server CPU {cpu * 1000:.2f} ms/request "
        f"(~{1 / cpu if cpu else 0:,.0f} req/s per core): "
        f"{len(latencies) / seconds:,.0f} req/s, "
        f"p50 {_pct(latencies, 0.5) * 1000:.1f} ms, p99 {_pct(latencies, 0.99) * 1000:.1f} ms"
        f" | the library call directly: p50 {_pct(direct, 0.5) * 1000:.2f} ms, "
        f"p99 {_pct(direct, 0.99) * 1000:.2f} ms, mean {statistics.fmean(direct) * 1000:.2f} ms"
    )


def _direct(call: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def test_statistics_read(api: Api, stack: Any) -> None:
    direct = _direct(lambda: stack.stats.get("customer", 1), DIRECT_CALLS)
    run = _run(api, "/v1/stats/customers/1", {}, STATS_SECONDS)
    _report("statistics", run, STATS_SECONDS, direct)
    assert not run[1], "every statistics read answered"
    alone = _run(api, "/v1/stats/customers/1", {}, 3.0, clients=1)
    _report("statistics, one client", alone, 3.0, direct, clients=1)


def test_search(api: Api, stack: Any) -> None:
    params = {"q": "espresso", "limit": 10}
    direct = _direct(lambda: stack.search.search("espresso", limit=11), DIRECT_CALLS // 10)
    run = _run(api, "/v1/products/search", params, SEARCH_SECONDS)
    _report("search (emulator)", run, SEARCH_SECONDS, direct)
    alone = _run(api, "/v1/products/search", params, 3.0, clients=1)
    _report("search (emulator), one client", alone, 3.0, direct, clients=1)


def test_baseline_without_a_backend(api: Api) -> None:
    """``/livez``: the same load on a route that calls no backend (the HTTP stack's floor)."""
    _report("baseline /livez", _run(api, "/livez", {}, STATS_SECONDS), STATS_SECONDS, [0.0])
