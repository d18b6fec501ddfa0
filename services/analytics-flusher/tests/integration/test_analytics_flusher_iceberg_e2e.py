"""The flusher writing the Iceberg tables alone (no Parquet export, the default with a
catalog), as a child process on the embedded stack: real Debezium, the broker, the catalog in
PostgreSQL and the warehouse on the AWS emulator's S3, the shop simulator.

Through a SIGKILL (changes committed to a table but not to Kafka are read again), a rebalance
between two flushers and one of them leaving (it commits what it holds on revoke), the changes
tables hold every change once, and their totals and the report tables' (recomputed by the
process holding the orders topic's partition 0) equal the source's.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from devstack import ShopSimulator

pytestmark = pytest.mark.timeout(300)

# No Parquet export; the report tables recomputed by the flushers themselves every 2 s.
TABLES_ONLY = {"LAKE_PARQUET_EXPORT": "false", "LAKE_REPORTS_INTERVAL_SECONDS": "2"}


def test_a_kill_and_a_rebalance_neither_lose_nor_double_a_change(
    flushers: Any,
    lake: Any,
    kit: Any,
    shop_simulator: ShopSimulator,
    source_postgres: Any,
    kafka_group: str,
) -> None:
    first = flushers.start("flusher-0", kafka_group, **TABLES_ONLY)
    with kit.Background(lambda: shop_simulator.run(duration=20.0)):
        _wait_for_commit(first)
        time.sleep(1.0)
        first.kill()  # SIGKILL: buffered changes lost, uncommitted offsets read again
        proc = flushers.start("flusher-1", kafka_group, **TABLES_ONLY)
        _wait_for_commit(proc)
        second = flushers.start("flusher-b", kafka_group, **TABLES_ONLY)  # a rebalance
        _wait_for(second, "claimed partitions")
        # The first leaves: what it holds is committed on revoke, the second takes the rest.
        assert proc.stop(timeout=30) == 0
    totals = kit.converge(lake, source_postgres, parquet=False)
    assert sum(d.orders for d in totals["daily_sales"].values()) > 0
    assert second.stop(timeout=30) == 0
    assert lake.assert_iceberg_exactly_once() > 0
    logs = "".join(p.log_path.read_text(errors="replace") for p in flushers.started)
    assert "window part written" not in logs  # no Parquet export
    assert "report tables materialized" in logs
    assert lake.s3.list_objects_v2(Bucket=lake.bucket, Prefix="reports/")["KeyCount"] == 0


def _wait_for_commit(proc: Any) -> None:
    """Until the process has committed changes to a table since it started."""
    _wait_for(proc, "changes committed")


def _wait_for(proc: Any, line: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if line in proc.log_path.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{proc.name} logged no {line!r} in {timeout:.0f} s")
