"""`make up` (here: `cdc dev up`, which the Makefile calls) runs bounded, shows changes flowing
from the simulator through the real Debezium connector into the broker, checks that every
committed change arrived, and leaves no process behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil


def test_bounded_dev_up_flows_checks_and_cleans_up(tmp_path: Path) -> None:
    cdc = Path(sys.executable).with_name("cdc")
    result = subprocess.run(
        [
            str(cdc),
            "dev",
            "up",
            "--duration",
            "15",
            "--rate",
            "100",
            "--seed",
            "7",
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "COLUMNS": "120"},
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "Debezium is streaming" in out
    assert "every committed change reached the broker" in out
    assert "MISMATCH" not in out
    for op_row in ("dbserver1.public.orders", "dbserver1.public.order_items", "user-events"):
        assert op_row in out
    leftovers = [
        p.info
        for p in psutil.process_iter(["pid", "cmdline"])
        if any(str(tmp_path) in part for part in (p.info["cmdline"] or []))
    ]
    assert leftovers == []
