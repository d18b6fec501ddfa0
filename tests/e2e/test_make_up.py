"""`make up` (here: `cdc dev up`, which the Makefile calls) runs the whole pipeline bounded: the
simulator's changes flow through the real Debezium connector and the broker into the four
services; every committed change arrives, every read model then equals the source database
(the verification table passes), the read API and its dashboard answer with the printed key
while it runs, and no process is left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import psutil

# The API imports its read libraries (pyarrow, pyiceberg) at start: seconds on a busy machine.
_API_START_S = 90.0
_DASHBOARD = re.compile(r"(http://127\.0\.0\.1:\d+)/dashboard#key=([A-Za-z0-9_-]+)")


def _get(url: str, key: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def _probe_api(lines: list[str], seen: threading.Event, found: dict[str, Any]) -> None:
    """Once the dashboard's address is printed: /readyz, /v1/pipeline with the printed key,
    and the page itself, while the run goes on."""
    seen.wait(timeout=400)
    match = next(
        (m for line in lines if (m := _DASHBOARD.search(line))),
        None,
    )
    if match is None:
        return
    base, key = match.group(1), match.group(2)
    found["printed"] = (base, key)
    deadline = time.monotonic() + _API_START_S
    while time.monotonic() < deadline:
        found["readyz"] = _get(f"{base}/readyz")
        if found["readyz"][0] == 200:
            break
        time.sleep(1)
    found["pipeline"] = _get(f"{base}/v1/pipeline", key)
    found["no_key"] = _get(f"{base}/v1/pipeline")
    found["page"] = _get(f"{base}/dashboard")


def test_bounded_dev_up_runs_the_pipeline_verifies_and_cleans_up(stack_dir: Path) -> None:
    cdc = Path(sys.executable).with_name("cdc")
    proc = subprocess.Popen(
        [
            str(cdc),
            "dev",
            "up",
            "--duration",
            "20",
            "--rate",
            "200",
            "--seed",
            "7",
            "--work-dir",
            str(stack_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    lines: list[str] = []
    seen = threading.Event()
    found: dict[str, Any] = {}
    probe = threading.Thread(target=_probe_api, args=(lines, seen, found), daemon=True)
    probe.start()
    assert proc.stdout is not None
    watchdog = threading.Timer(420, proc.kill)  # the bounded run's budget, as before
    watchdog.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            if "/dashboard#key=" in line:
                seen.set()
        returncode = proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        seen.set()
    probe.join(timeout=_API_START_S + 60)
    out = "".join(lines)
    assert returncode == 0, out[-4000:]
    assert "Debezium is streaming" in out
    assert "every committed change reached the broker" in out
    assert "MISMATCH" not in out
    assert "where to look" in out and "cdc dev verify" in out
    # The read API and its dashboard, at the printed address with the printed key.
    assert "printed" in found, "no dashboard address in the start-up output"
    base, key = found["printed"]
    assert found["readyz"][0] == 200, found["readyz"]
    status, body = found["pipeline"]
    assert status == 200, body[:2000]
    services = {s["name"]: s for s in orjson.loads(body)["services"]}
    assert set(services) >= {"event-store-writer", "stats-aggregator"}, services
    assert any(s["up"] for s in services.values()), services
    assert found["no_key"][0] == 401
    assert found["page"][0] == 200 and b"<svg" in found["page"][1]
    # The stack description records them: `cdc dev dashboard` finds them there.
    recorded = subprocess.run(
        [str(cdc), "dev", "dashboard", "--work-dir", str(stack_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    stack = orjson.loads(recorded.stdout)
    assert stack["api_url"] == base and stack["api_key"] == key
    assert stack["dashboard_url"] == f"{base}/dashboard#key={key}"
    assert _get(f"{base}/livez")[0] == 0, "the API still answers after the run"
    # The run's peaks: each service's largest lag and p99 while the simulator ran.
    peaks = out[out.index("while the simulator ran") : out.index("every committed change")]
    assert "max lag" in peaks and "p99 e2e (whole run)" in peaks
    assert all(s in peaks for s in ("stats-aggregator", "search-indexer")), peaks
    # The verification table: a PASS verdict, a row per check of each of the four services.
    assert "verification against the source database: PASS" in out, out[-6000:]
    assert "FAIL" not in out
    for service in (
        "event-store-writer",
        "stats-aggregator",
        "search-indexer",
        "analytics-flusher",
    ):
        assert out.count(service) >= 3, f"{service} has no checks in the table"
    # The lake is checked three ways: its Parquet export, the Iceberg changes tables, and the
    # report tables recomputed from them.
    assert "iceberg daily_sales" in out and "reports daily_sales" in out, out[-6000:]
    for op_row in ("dbserver1.public.orders", "dbserver1.public.order_items", "user-events"):
        assert op_row in out
    leftovers = [
        p.info
        for p in psutil.process_iter(["pid", "cmdline"])
        if any(str(stack_dir) in part for part in (p.info["cmdline"] or []))
    ]
    assert leftovers == []
