"""The simulator's workload and the ground-truth queries, checked against each other and against
an independent recomputation from the raw rows."""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from devstack import PostgresServer, ShopSimulator, install_schema, read_topic
from devstack._shop import seed
from devstack.truth import (
    customer_stats,
    daily_sales,
    order_status_counts,
    product_stats,
    read_activity_log,
    row_counts,
    search_documents,
    user_stats,
)


def test_workload_ledger_and_ground_truth_agree_with_the_rows(
    source_postgres: PostgresServer, unique_id: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    db = f"shop_{unique_id}"
    source_postgres.create_database(db)
    conn = source_postgres.connect(db)
    install_schema(conn)
    seed(conn, random.Random(1), customers=10, products=20)
    seeded = row_counts(conn)

    log = tmp_path / "events.jsonl"
    sim = ShopSimulator(
        source_postgres.dsn(db),
        kafka_bootstrap,
        rate=1,
        activity_rate=1,
        seed=42,
        activity_log=log,
        user_events_topic=f"ue-{unique_id}",
    )
    for _ in range(1500):
        sim.step()
    sim.emit_activity(300)
    sim.close()
    ledger = sim.ledger

    # Every kind of operation happened, and the ledger explains the row counts exactly.
    assert {
        "place_order",
        "pay_order",
        "ship_order",
        "cancel_order",
        "restock",
        "change_price",
        "delete_product",
    } <= set(ledger.operations)
    counts = row_counts(conn)
    for table in counts:
        ops = ledger.changes.get(table, {})
        assert counts[table] == seeded[table] + ops.get("c", 0) - ops.get("d", 0), table

    # Ground truth versus an independent fold over the raw rows.
    with conn.cursor() as cur:
        cur.execute("SELECT id, customer_id, status, total FROM orders")
        orders = {oid: (cid, status, total) for oid, cid, status, total in cur.fetchall()}
        cur.execute("SELECT order_id, product_id, quantity, unit_price FROM order_items")
        items = cur.fetchall()
        cur.execute("SELECT id, stock FROM products")
        stock = dict(cur.fetchall())
    spent: dict[int, Decimal] = defaultdict(Decimal)
    for cid, status, total in orders.values():
        if status != "cancelled":
            spent[cid] += total
    cstats = customer_stats(conn)
    assert {c: s.total_spent for c, s in cstats.items() if s.total_spent} == dict(spent)
    assert sum(s.orders_count for s in cstats.values()) == len(orders)

    units: dict[int, int] = defaultdict(int)
    for order_id, product_id, qty, _unit in items:
        if orders[order_id][1] != "cancelled":
            units[product_id] += qty
    pstats = product_stats(conn)
    assert {p: s.units_sold for p, s in pstats.items() if s.units_sold} == dict(units)
    assert {p for p, s in pstats.items() if not s.deleted} == set(stock)
    assert all(s.low_stock == (s.stock is not None and s.stock < 10) for s in pstats.values())

    statuses = order_status_counts(conn)
    assert sum(statuses.values()) == len(orders)
    assert sum(d.orders for d in daily_sales(conn).values()) == len(orders) - statuses.get(
        "cancelled", 0
    )
    assert set(search_documents(conn)) == set(stock)

    # The activity log holds exactly what the broker acknowledged.
    events = read_activity_log(log)
    assert len(events) == ledger.activity_events == 300
    on_topic = read_topic(kafka_bootstrap, f"ue-{unique_id}", expected=300, timeout=30)
    assert len(on_topic) == 300
    ustats = user_stats(events)
    assert sum(u.total_events for u in ustats.values()) == 300
    conn.close()
