"""The flusher on the embedded stack: real Debezium, moto S3, the shop simulator.

After each run the DuckDB queries over the objects must give exactly the source's totals per
order day, product, customer and status, and every key written more than once (the bucket is
versioned) must have held the same bytes each time.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from devstack import ShopSimulator

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
    proc = flushers.start("flusher", kafka_group, **env)
    shop_simulator.run(duration=RUN_S)
    totals = kit.converge(lake, source_postgres)
    assert sum(d.orders for d in totals["daily_sales"].values()) > 0
    assert proc.stop(timeout=30) == 0
    forced = proc.log_path.read_text(errors="replace").count("past MAX_OPEN_BYTES")
    assert (forced > 0) == bool(env), forced
    keys = lake.versions()
    reports = {k.split("/")[1] for k in keys}
    assert {"orders", "order_items", "sales", "customer_metrics", "product_sales"} <= reports
    assert all("/dt=" in k and "/hour=" in k and "/window=" in k for k in keys)
    lake.assert_rewrites_identical()
    assert lake.assert_iceberg_exactly_once() > 0


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
