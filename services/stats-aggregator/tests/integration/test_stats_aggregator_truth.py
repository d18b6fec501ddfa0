"""The aggregator (a real child process) against the ground truth, with the real Debezium relay
and the shop simulator: a plain run, SIGKILLs, a relay restart (re-emits) and a sink outage.

Every test reads all topics from the beginning with its own group and schema, so it must end
equal to the ground truth of the whole session's shop database and activity log.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from typing import Any

import orjson
import sqlalchemy as sa
from devstack import (
    AwsEmulator,
    DebeziumRelay,
    PostgresServer,
    ShopSimulator,
    read_topic,
    wait_until,
)
from prometheus_client.parser import text_string_to_metric_families
from sink_kit.postgres import make_engine
from stats_aggregator.store import inventory_table_definition
from typer.testing import CliRunner

# Short, busy runs: 100 source transactions per second for 12 s give ~1,200 transactions
# (hundreds of orders, dozens of cancellations, restocks, price changes, a few deletes).
RATE = 100.0
DURATION_S = 12.0


def _scrape(rig: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    url = f"http://127.0.0.1:{rig.env['HEALTH_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _check_metrics(rig: Any, truth: dict[int, Any]) -> None:
    """The process serves its own figures: the outboxes drained (equal to their rows), the
    low-stock products of the truth, the projection's DynamoDB calls timed, the pool's use."""
    samples = _scrape(rig)
    svc = ("service", "stats-aggregator")

    def value(name: str, *labels: tuple[str, str]) -> float | None:
        return samples.get((name, tuple(sorted((svc, *labels)))))

    with rig.engine.connect() as conn:
        waiting = conn.execute(
            sa.text("SELECT count(*) FROM low_stock_alerts WHERE published_at IS NULL")
        ).scalar_one()
    assert value("cdc_outbox_backlog", ("outbox", "low_stock_alerts")) == waiting == 0
    assert value("cdc_outbox_backlog", ("outbox", "inventory_projection")) == 0
    # Products below the threshold now, as the truth has them (restocks may leave none: the
    # sink's test sees one).
    low = sum(1 for p in truth.values() if p[5] and not p[6])
    assert value("cdc_low_stock_products") == low
    puts = value(
        "cdc_aws_call_duration_seconds_count",
        ("aws_service", "dynamodb"),
        ("operation", "PutItem"),
    )
    assert puts is not None and puts > 0, sorted(k for k in samples if "aws" in k[0])
    assert value("cdc_db_pool_size", ("pool", "sink")) == 10
    assert value("cdc_db_pool_checked_out", ("pool", "sink")) is not None


def _run_simulator(sim: ShopSimulator, duration: float) -> threading.Thread:
    sim.rate = RATE
    sim.activity_rate = RATE
    thread = threading.Thread(target=sim.run, args=(duration,), daemon=True)
    thread.start()
    return thread


def test_statistics_equal_the_ground_truth_and_the_cli_shows_them(
    stats_rig: Any,
    shop_simulator: ShopSimulator,
    aws_emulator: AwsEmulator,
    unique_id: str,
    make_topic: Any,
    kafka_bootstrap: str,
) -> None:
    table = f"inventory-{unique_id}"
    alerts_topic = make_topic(3, name=f"alerts-{unique_id}")
    stats_rig.start(
        INVENTORY_TABLE=table,
        INVENTORY_CREATE_TABLE="true",
        ALERTS_TOPIC=alerts_topic,
        **aws_emulator.env,
    )
    shop_simulator.rate, shop_simulator.activity_rate = RATE, RATE
    shop_simulator.run(DURATION_S)
    ops = shop_simulator.ledger.operations
    assert ops["cancel_order"] and ops["restock"] and ops["change_price"], ops
    stats_rig.assert_converges()

    # The DynamoDB projection follows the stock of every product.
    truth = stats_rig.truth()["product_stats"]
    dynamo: Any = aws_emulator.client("dynamodb")

    def projected() -> dict[int, Any]:
        items = dynamo.scan(TableName=table)["Items"]
        return {
            int(i["product_id"]["N"]): None if "NULL" in i["stock"] else int(i["stock"]["N"])
            for i in items
        }

    want = {pid: p[2] for pid, p in truth.items() if not p[6]}
    deadline = time.monotonic() + 60
    while {k: v for k, v in projected().items() if v is not None} != want:
        assert time.monotonic() < deadline, "inventory projection did not converge"
        time.sleep(1)
    assert inventory_table_definition()["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]

    # Every low-stock alert in the outbox is published once, keyed by product id.
    engine = make_engine(stats_rig.schema.url)

    def outbox() -> list[tuple[str, Any]]:
        with engine.connect() as conn:
            return [
                (str(pid), published)
                for pid, published in conn.execute(
                    sa.text("SELECT product_id, published_at FROM low_stock_alerts")
                )
            ]

    wait_until(
        lambda: outbox() and all(p is not None for _, p in outbox()),
        60,
        message="every alert published",
    )
    rows = outbox()
    published = read_topic(kafka_bootstrap, alerts_topic, expected=len(rows), timeout=30)
    assert sorted(r.key.decode() for r in published if r.key) == sorted(pid for pid, _ in rows)
    engine.dispose()
    _check_metrics(stats_rig, truth)

    # The CLI reads the same rows.
    from cdc_cli import app, load_plugins  # the operator CLI; services register commands

    load_plugins(app)
    runner = CliRunner()
    env = {"DATABASE_URL": stats_rig.schema.url}
    customer_id = next(iter(stats_rig.truth()["customer_stats"]))
    result = runner.invoke(app, ["stats", "customer", str(customer_id), "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["customer_id"] == customer_id
    product_id = next(iter(truth))
    result = runner.invoke(app, ["stats", "product", str(product_id)], env=env)
    assert result.exit_code == 0, result.output
    assert "units_sold" in result.output
    user_id = next(iter(stats_rig.truth()["user_stats"]))
    result = runner.invoke(app, ["stats", "user", user_id, "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert "engagement_score" in orjson.loads(result.output)
    result = runner.invoke(app, ["stats", "user", "nobody"], env=env)
    assert result.exit_code == 1


def test_statistics_survive_sigkills_of_the_aggregator(
    stats_rig: Any, shop_simulator: ShopSimulator
) -> None:
    stats_rig.start()
    sim = _run_simulator(shop_simulator, DURATION_S)
    kills = 0
    while sim.is_alive() or kills < 2:
        stats_rig.wait_ready()
        time.sleep(1.5)  # mid-stream: batches are being written
        stats_rig.process.kill()
        kills += 1
        stats_rig.start()
    sim.join()
    assert kills >= 2
    stats_rig.assert_converges()


def test_statistics_survive_a_debezium_relay_restart(
    stats_rig: Any, shop_simulator: ShopSimulator, debezium_relay: DebeziumRelay
) -> None:
    stats_rig.start()
    stats_rig.wait_ready()
    sim = _run_simulator(shop_simulator, DURATION_S)
    time.sleep(DURATION_S / 2)
    debezium_relay.stop()
    debezium_relay.start()
    sim.join()
    stats_rig.assert_converges()


def test_statistics_survive_a_sink_database_outage(
    stats_rig: Any, shop_simulator: ShopSimulator, sink_postgres: PostgresServer
) -> None:
    stats_rig.start()
    stats_rig.wait_ready()
    sim = _run_simulator(shop_simulator, DURATION_S)
    time.sleep(3)  # batches are flowing when the database goes away
    sink_postgres.process.pause()
    try:
        time.sleep(15)
    finally:
        sink_postgres.process.resume()
    sim.join()
    assert stats_rig.process.running, stats_rig.process.log_tail(40)
    stats_rig.assert_converges()
