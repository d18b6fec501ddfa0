"""The PostgreSQL sink through the real consumer loop (in-memory messages, real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from cdc_events.testing import make_change, make_tombstone, make_user_activity
from consumer_runtime import CommitStrategy, TopicPartition
from consumer_runtime.testing import SinkHarness
from devstack.pytest_plugin import SinkSchema
from sink_kit.postgres import make_engine, upgrade_schema
from stats_aggregator import Decoder, StatsSink
from stats_aggregator.sink import MIGRATION_LOCK, MIGRATIONS

T0 = datetime(2024, 3, 1, 23, 30, tzinfo=UTC)
ORDERS = "dbserver1.public.orders"
ITEMS = "dbserver1.public.order_items"
PRODUCTS = "dbserver1.public.products"


def _sink(schema: SinkSchema, **kwargs: Any) -> StatsSink:
    engine = make_engine(schema.url)
    upgrade_schema(engine, MIGRATIONS, MIGRATION_LOCK)
    return StatsSink(engine, group="g", **kwargs)


def _harness(sink: StatsSink) -> SinkHarness[Any]:
    return SinkHarness(sink, Decoder(), strategy=CommitStrategy.SINK_MANAGED, batch_size=50)


def _rows(sink: StatsSink, sql: str) -> list[tuple[Any, ...]]:
    with sink.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def _value(record: Any) -> bytes:
    return record.value.encode() if isinstance(record.value, str) else record.value


def test_statistics_offsets_and_reemits_in_one_transaction(sink_schema: SinkSchema) -> None:
    sink = _sink(sink_schema)
    h = _harness(sink)
    order = {"id": 1, "customer_id": 4, "status": "pending", "total": Decimal("30.00"),
             "created_at": T0}  # fmt: skip
    product = {"id": 9, "name": "Cup", "price": Decimal("10.00"), "stock": 12}
    line = {"id": 5, "order_id": 1, "product_id": 9, "quantity": 3, "unit_price": Decimal("10.00")}
    h.produce(ITEMS, [_value(make_change("c", table="order_items", after=line, lsn=110))])
    h.produce(
        PRODUCTS,
        [
            _value(make_change("c", table="products", after=product, lsn=100)),
            _value(make_change("u", table="products", after=product | {"stock": 9}, lsn=111)),
            _value(make_change("u", table="products", after=product | {"stock": 9}, lsn=111)),
            b"not json",
        ],
    )
    h.produce(
        ORDERS,
        [
            _value(make_change("c", table="orders", after=order, lsn=105)),
            _value(
                make_change("u", table="orders", after=order | {"status": "cancelled"}, lsn=120)
            ),
            _value(make_tombstone(table="orders", key={"id": 1})),
        ],
    )
    h.run_until_idle()
    products = (
        "SELECT product_id, stock, low_stock, units_sold, revenue, deleted FROM product_stats"
    )
    assert _rows(sink, products) == [(9, 9, True, 0, Decimal("0.00"), False)]
    customers = (
        "SELECT orders_count, cancelled_count, total_spent, avg_order_value FROM customer_stats"
    )
    assert _rows(sink, customers) == [(1, 1, Decimal("0.00"), None)]
    assert _rows(sink, "SELECT status, count FROM order_status_counts") == [("cancelled", 1)]
    assert _rows(sink, "SELECT * FROM daily_sales") == []
    alerts = _rows(sink, "SELECT product_id, stock, source_lsn, message FROM low_stock_alerts")
    assert [a[:3] for a in alerts] == [(9, 9, 111)]
    assert alerts[0][3]["source"]["lsn"] == 111
    assert sink.stats["reemits_skipped"] == 1
    assert [d.code for d in h.dead_letters] == ["not_json"]
    # Offsets live with the data: a new sink resumes exactly after the last batch.
    fresh = _sink(sink_schema)
    stored = fresh.stored_offsets([TopicPartition(t, 0) for t in (ORDERS, ITEMS, PRODUCTS)])
    assert stored == {
        TopicPartition(ORDERS, 0): 3,
        TopicPartition(ITEMS, 0): 1,
        TopicPartition(PRODUCTS, 0): 4,
    }
    h.shutdown()
    fresh.close()


def test_user_events_are_counted_once_and_scored(sink_schema: SinkSchema) -> None:
    sink = _sink(sink_schema)
    h = _harness(sink)
    view = orjson.loads(make_user_activity(event_type="view", user_id="u1"))
    view = view | {"event_id": "e1", "timestamp": "2024-03-01T10:00:00+00:00", "duration": 12.5}
    buy = view | {"event_id": "e2", "event_type": "purchase", "amount": 19.99,
                  "timestamp": "2024-03-01T10:05:00+00:00"}  # fmt: skip
    buy.pop("duration")
    h.produce("user-events", [orjson.dumps(view), orjson.dumps(buy), orjson.dumps(buy)])
    h.run_until_idle()
    h.produce("user-events", [orjson.dumps(buy)])  # a resend in a later batch
    h.run_until_idle()
    rows = _rows(
        sink,
        "SELECT user_id, total_events, total_purchases, total_spent, avg_session_duration, "
        "engagement_score, churn_risk FROM user_stats",
    )
    assert rows == [("u1", 2, 1, Decimal("19.99"), Decimal("12.5"), Decimal("51.4"),
                     Decimal("0.294"))]  # fmt: skip
    h.shutdown()
