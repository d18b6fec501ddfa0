"""The report tables on a real catalog (PostgreSQL) and warehouse (the AWS emulator's S3):
recomputed from the changes tables, their sums equal the current state whatever was delivered
twice, and a materialization from older sources never replaces newer rows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from analytics_flusher import OrderChange
from analytics_flusher.report_queries import REPORT_SUMS
from analytics_flusher.store._iceberg import (
    ORDERS_CHANGES,
    REPORT_SOURCES,
    REPORT_TABLES,
    lake_query,
    materialize_reports,
    open_catalog,
    order_rows,
)
from analytics_flusher.store._iceberg._reports import _newer, _recorded
from consumer_runtime import TopicPartition

TOPIC = "dbserver1.public.orders"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW_MS = 300_000


def order(oid: int, offset: int, version: int, status: str | None, minute: int) -> OrderChange:
    deleted = status is None
    return OrderChange(
        order_id=oid,
        customer_id=None if deleted else oid % 2,
        status=status,
        total=None if deleted else Decimal("10.00") * oid,
        created_at=None if deleted else CREATED,
        deleted=deleted,
        op="d" if deleted else ("c" if version == 1 else "u"),
        source_ts_ms=T0_MS + minute * 60_000,
        offset=offset,
        version=f"q{oid:030d}{version:031d}",
        event_id=f"{oid}-{version}",
    )


def sums(catalog: Any, namespace: str, name: str) -> list[tuple[Any, ...]]:
    return lake_query(catalog, namespace, REPORT_SUMS[name])[1]


def test_reports_sum_to_the_current_state_and_count_a_redelivery_once(iceberg: Any) -> None:
    writer = iceberg.writer()
    p0 = [
        order(1, 0, 1, "paid", 0),
        order(2, 1, 1, "paid", 1),
        order(1, 2, 2, "cancelled", 7),  # a later window takes order 1 back
        order(3, 3, 1, "pending", 8),
    ]
    writer.append(ORDERS_CHANGES, order_rows(0, p0), {P0: 4}, generation=1)
    # Partition 1: order 2 redelivered (a dead letter replayed: same version, new offset), and
    # order 3 deleted.
    p1 = [order(2, 0, 1, "paid", 1), order(3, 1, 2, None, 12)]
    writer.append(ORDERS_CHANGES, order_rows(1, p1), {P1: 2}, generation=1)
    catalog = open_catalog(iceberg.config)
    ns = iceberg.config.namespace

    result = materialize_reports(catalog, ns, window_ms=WINDOW_MS, top_n=10)
    assert set(result.written) == set(REPORT_TABLES)

    day = date(2026, 1, 1)
    assert sums(catalog, ns, "daily_sales") == [(day, 1, Decimal("20.00"))]
    assert sums(catalog, ns, "customer_spend_by_day") == [(day, 0, 1, Decimal("20.00"))]
    assert sums(catalog, ns, "order_status_counts") == [("cancelled", 1), ("paid", 1)]
    sales = lake_query(
        catalog, ns, "SELECT window_start, net_orders, net_revenue FROM sales ORDER BY 1"
    )[1]
    assert [(w.minute, n, r) for w, n, r in sales] == [
        (0, 2, Decimal("30.00")),  # orders 1 and 2 placed (order 2 once)
        (5, 0, Decimal("20.00")),  # order 1 cancelled (-1, -10), order 3 placed (+1, +30)...
        (10, -1, Decimal("-30.00")),  # ... and deleted
    ]
    top = lake_query(catalog, ns, "SELECT customer_id, orders, spend FROM top_customers")[1]
    assert top == [(0, 1, Decimal("20.00"))]
    summary = lake_query(
        catalog, ns, "SELECT order_changes, orders_placed, orders_cancelled FROM window_summary"
    )[1]
    assert summary == [(2, 2, 0), (2, 1, 1), (1, 0, 0)]


def test_nothing_new_writes_nothing_and_newer_sources_replace_the_rows(iceberg: Any) -> None:
    writer = iceberg.writer()
    writer.append(ORDERS_CHANGES, order_rows(0, [order(1, 0, 1, "paid", 0)]), {P0: 1}, 1)
    catalog = open_catalog(iceberg.config)
    ns = iceberg.config.namespace
    first = materialize_reports(catalog, ns, window_ms=WINDOW_MS, top_n=10)
    again = materialize_reports(catalog, ns, window_ms=WINDOW_MS, top_n=10)
    assert first.written and again.up_to_date
    sales = catalog.load_table((ns, "sales"))
    assert len(sales.snapshots()) == 1

    writer.append(ORDERS_CHANGES, order_rows(0, [order(2, 1, 1, "paid", 1)]), {P0: 2}, 1)
    newer = materialize_reports(catalog, ns, window_ms=WINDOW_MS, top_n=10)
    assert newer.written["sales"] == 1
    assert sums(catalog, ns, "daily_sales") == [(date(2026, 1, 1), 2, Decimal("30.00"))]
    summary = catalog.load_table((ns, "sales")).current_snapshot().summary
    assert summary is not None and str(newer.sources[ORDERS_CHANGES][0]) in summary[REPORT_SOURCES]

    # A process that read the changes tables before the last commit: its sources are older
    # than those the tables record, so it leaves them alone.
    assert not _newer(first.sources, _recorded(catalog.load_table((ns, "sales"))))
    assert _newer(newer.sources, _recorded(None))
