"""`make up` (here: `cdc dev up`, which the Makefile calls) runs the whole pipeline bounded: the
simulator's changes flow through the real Debezium connector and the broker into the four
services; every committed change arrives, every read model then equals the source database
(the verification table passes), and no process is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil


def test_bounded_dev_up_runs_the_pipeline_verifies_and_cleans_up(tmp_path: Path) -> None:
    cdc = Path(sys.executable).with_name("cdc")
    result = subprocess.run(
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
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=420,
        env={**os.environ, "COLUMNS": "120"},
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "Debezium is streaming" in out
    assert "every committed change reached the broker" in out
    assert "MISMATCH" not in out
    assert "where to look" in out and "cdc dev verify" in out
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
        if any(str(tmp_path) in part for part in (p.info["cmdline"] or []))
    ]
    assert leftovers == []
