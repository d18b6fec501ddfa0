"""The PostgreSQL sink through the real consumer loop (in-memory messages, real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from cdc_events.testing import make_change, make_tombstone, make_user_activity
from consumer_runtime import CommitStrategy, Message, PermanentError, TopicPartition
from consumer_runtime.testing import SinkHarness
from devstack.pytest_plugin import SinkSchema
from prometheus_client import CollectorRegistry
from sink_kit.postgres import make_engine, upgrade_schema
from stats_aggregator import Decoder, StatsSink, scores
from stats_aggregator.store import MIGRATION_LOCK, MIGRATIONS, StoreGauges

T0 = datetime(2024, 3, 1, 23, 30, tzinfo=UTC)
ORDERS = "dbserver1.public.orders"
ITEMS = "dbserver1.public.order_items"
PRODUCTS = "dbserver1.public.products"


def _sink(schema: SinkSchema, **kwargs: Any) -> StatsSink:
    engine = make_engine(schema.url)
    upgrade_schema(engine, MIGRATIONS, MIGRATION_LOCK)
    return StatsSink(engine, group="g", **kwargs)


def _harness(sink: StatsSink, decoder: Any = None) -> SinkHarness[Any]:
    return SinkHarness(
        sink, decoder or Decoder(), strategy=CommitStrategy.SINK_MANAGED, batch_size=50
    )


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
    _check_store_gauges(sink)
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


def _check_store_gauges(sink: StatsSink) -> None:
    """The gauges read from the store equal its rows: no publisher, so the alert waits."""
    registry = CollectorRegistry()
    registry.register(StoreGauges(sink.engine, projection=False))
    waiting = _rows(sink, "SELECT count(*) FROM low_stock_alerts WHERE published_at IS NULL")
    backlog = {"service": "stats-aggregator", "outbox": "low_stock_alerts"}
    assert registry.get_sample_value("cdc_outbox_backlog", backlog) == waiting[0][0] == 1
    low = {"service": "stats-aggregator"}
    assert registry.get_sample_value("cdc_low_stock_products", low) == 1
    pool = {"service": "stats-aggregator", "pool": "sink"}
    assert registry.get_sample_value("cdc_db_pool_size", pool) == 10  # 5 + 5 overflow
    assert registry.get_sample_value("cdc_db_pool_checked_out", pool) == 0


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


def test_a_user_event_the_store_refuses_is_dead_lettered_and_the_rest_counted(
    sink_schema: SinkSchema,
) -> None:
    # User events come from a web front end: an amount past the column's range or a NUL in an
    # id parses, but PostgreSQL refuses it. The statistics go on without it.
    sink = _sink(sink_schema)
    h = _harness(sink)
    base = orjson.loads(make_user_activity(event_type="purchase", user_id="u1"))
    base = base | {"timestamp": "2024-03-01T10:00:00+00:00", "amount": 5}
    events = [
        base | {"event_id": "ok1"},
        base | {"event_id": "huge", "amount": 1e20},
        base | {"event_id": "ok2"},
        base | {"event_id": "nul", "user_id": "u\x00"},
        base | {"event_id": "ok3"},
    ]
    h.produce("user-events", [orjson.dumps(e) for e in events])
    h.run_until_idle()
    assert _rows(sink, "SELECT user_id, total_purchases, total_spent FROM user_stats") == [
        ("u1", 3, Decimal("15.00"))
    ]
    dead = sorted((d.offset, d.code) for d in h.dead_letters)
    assert dead == [(1, "store_rejected"), (3, "store_rejected")]
    assert all("PostgreSQL" in d.message for d in h.dead_letters)
    assert sink.stored_offsets([TopicPartition("user-events", 0)]) == {
        TopicPartition("user-events", 0): 5
    }
    h.shutdown()


def test_sums_of_the_largest_totals_the_source_allows_are_held_exactly(
    sink_schema: SinkSchema,
) -> None:
    # orders.total is numeric(14,2) at the source: 200 orders at its maximum are legitimate,
    # and a customer's total_spent must hold their exact sum (no store limit may refuse it).
    sink = _sink(sink_schema)
    h = _harness(sink)
    top = Decimal("999999999999.99")
    orders = [
        make_change(
            "c",
            table="orders",
            after={"id": i, "customer_id": 7, "status": "paid", "total": top, "created_at": T0},
            lsn=1000 + i,
        )
        for i in range(1, 201)
    ]
    h.produce(ORDERS, [_value(o) for o in orders])
    h.run_until_idle()
    assert h.dead_letters == []
    assert _rows(sink, "SELECT total_spent FROM customer_stats WHERE customer_id = 7") == [
        (top * 200,)
    ]
    assert _rows(sink, "SELECT revenue FROM daily_sales") == [(top * 200,)]
    h.shutdown()


# -- versions come from the source ----------------------------------------------------------

S = 30_000_000  # the LSN of the snapshot's consistent point
ORDER = {"id": 1, "customer_id": 4, "status": "pending", "total": Decimal("30.00"),
         "created_at": T0}  # fmt: skip
PRODUCT = {"id": 9, "name": "Cup", "price": Decimal("10.00"), "stock": 50}


def _read(table: str, row: dict[str, Any], snapshot: str = "true") -> bytes:
    """A snapshot read: every read of one snapshot carries the consistent point's LSN."""
    return _value(make_change("r", table=table, after=row, lsn=S, snapshot=snapshot))


def _streamed(table: str, row: dict[str, Any], lsn: int, commit: int | None) -> bytes:
    """A streamed change; ``commit`` is the commit LSN of the transaction emitted before its
    own (Debezium's ``source.sequence[0]``), null for the first one after the snapshot."""
    return _value(make_change("u", table=table, after=row, lsn=lsn, sequence=(commit, lsn)))


def _state(sink: StatsSink) -> tuple[list[Any], list[Any], list[Any]]:
    return (
        _rows(sink, "SELECT product_id, stock, low_stock FROM product_stats"),
        _rows(sink, "SELECT status, count FROM order_status_counts"),
        _rows(sink, "SELECT orders_count, paid_or_shipped_count, total_spent FROM customer_stats"),
    )


def test_a_transaction_open_across_the_snapshot_point_is_applied_after_the_snapshot(
    sink_schema: SinkSchema,
) -> None:
    # The snapshot reads every row at its consistent point S. A transaction open at that point
    # wrote its changes *below* S (the snapshot did not see them: not committed) and committed
    # after it, so it is the first transaction streamed, sequence [null, "<lsn>"]. Its changes
    # are newer than the snapshot's reads of the same rows, although their LSNs are lower.
    sink = _sink(sink_schema)
    h = _harness(sink)
    h.produce(PRODUCTS, [_read("products", PRODUCT)])
    h.produce(ORDERS, [_read("orders", ORDER, snapshot="last")])
    h.run_until_idle()
    assert _state(sink) == (
        [(9, 50, False)],
        [("pending", 1)],
        [(1, 0, Decimal("30.00"))],
    )
    # The open transaction: the order is paid and the cup's stock goes down to 5 (a batch of
    # its own for the product, in one batch with the re-emitted snapshot read for the order).
    h.produce(PRODUCTS, [_streamed("products", PRODUCT | {"stock": 5}, S - 100, None)])
    h.run_until_idle()
    h.produce(
        ORDERS,
        [
            _read("orders", ORDER, snapshot="last"),  # re-emitted: skipped
            _streamed("orders", ORDER | {"status": "paid"}, S - 90, None),
        ],
    )
    h.run_until_idle()
    assert _state(sink) == (
        [(9, 5, True)],
        [("paid", 1)],
        [(1, 1, Decimal("30.00"))],
    )
    alerts = _rows(sink, "SELECT product_id, stock, source_lsn FROM low_stock_alerts")
    assert alerts == [(9, 5, S - 100)]
    # The next transaction (its commit key is the open one's commit LSN, above S) applies,
    # and a re-emit of the open transaction's change after it does not.
    h.produce(
        PRODUCTS,
        [
            _streamed("products", PRODUCT | {"stock": 40}, S + 200, S + 150),
            _streamed("products", PRODUCT | {"stock": 5}, S - 100, None),
        ],
    )
    h.run_until_idle()
    assert _state(sink)[0] == [(9, 40, False)]
    assert sink.stats["reemits_skipped"] == 2
    h.shutdown()


class DecoderWithABug:
    """The service's decoder with a bug that dead-letters snapshot reads until ``fixed``
    (what an operator's ``cdc dlq replay`` follows: a fix deployed, the originals replayed).

    The bug is past parsing: the decoder has seen the reads (its ``cdc_events.Versions`` knows
    the snapshot's point, which the first transaction after it needs for its version; a decoder
    that never parsed them gives that transaction its own LSN as generation key, below the
    reads when it was open across the point: the library's documented limit)."""

    def __init__(self) -> None:
        self.decoder = Decoder()
        self.fixed = False

    def __call__(self, message: Message) -> Any:
        decoded = self.decoder(message)
        if not self.fixed and b'"op":"r"' in (message.value() or b""):
            raise PermanentError("snapshot reads cannot be decoded (a bug)", code="decode_bug")
        return decoded


def test_a_dead_letter_replay_of_older_changes_after_newer_ones_changes_nothing(
    sink_schema: SinkSchema,
) -> None:
    sink = _sink(sink_schema)
    decoder = DecoderWithABug()
    h = _harness(sink, decoder)
    h.produce(
        PRODUCTS,
        [
            _read("products", PRODUCT),  # dead-lettered
            _streamed("products", PRODUCT | {"stock": 5}, S - 100, None),  # the open transaction
        ],
    )
    h.produce(
        ORDERS,
        [
            _read("orders", ORDER, snapshot="last"),  # dead-lettered
            _streamed("orders", ORDER | {"status": "paid"}, S - 90, None),
            _streamed("orders", ORDER | {"status": "shipped"}, S + 300, S + 150),
        ],
    )
    h.run_until_idle()
    newest = ([(9, 5, True)], [("shipped", 1)], [(1, 1, Decimal("30.00"))])
    assert _state(sink) == newest
    assert sorted(d.code for d in h.dead_letters) == ["decode_bug", "decode_bug"]
    # The fix is deployed; the operator replays the dead letters: the same bytes, produced again
    # at the end of their topics (new, higher offsets), after the newer changes of their rows.
    # So is, by mistake, an older streamed change.
    decoder.fixed = True
    for dead in h.dead_letters:
        h.produce(dead.topic, [dead.value], key=dead.key)
    h.produce(ORDERS, [_streamed("orders", ORDER | {"status": "paid"}, S - 90, None)])
    h.run_until_idle()
    assert _state(sink) == newest
    assert _rows(sink, "SELECT count(*) FROM low_stock_alerts") == [(1,)]
    assert sink.stats["reemits_skipped"] == 3
    h.shutdown()


# -- clocks lie: a user event stamped far ahead of the processing clock --------------------------

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # the processing clock of these tests
SKEW = timedelta(minutes=5)
Y2099 = datetime(2099, 1, 1, tzinfo=UTC)


def _activity(event_id: str, user: str, at: datetime) -> bytes:
    event = orjson.loads(make_user_activity(event_type="purchase", user_id=user))
    return orjson.dumps(event | {"event_id": event_id, "timestamp": at.isoformat(), "amount": 50})


def _watermark(sink: StatsSink) -> datetime:
    [(at,)] = _rows(sink, "SELECT max_event_at FROM activity_watermark")
    assert isinstance(at, datetime)
    return at


def _scores_as_of(sink: StatsSink, as_of: datetime) -> None:
    """Every user's scores in the ``user_stats`` view are those of ``domain.scores`` as of
    ``as_of``."""
    rows = _rows(
        sink,
        "SELECT user_id, total_events, total_spent, last_active, engagement_score, churn_risk "
        "FROM user_stats ORDER BY user_id",
    )
    assert rows
    for user, events, spent, last_active, engagement, churn in rows:
        want = scores(events, spent, last_active, as_of)
        assert (engagement, churn) == (want.engagement_score, want.churn_risk), user


def test_an_event_dated_2099_moves_the_scores_as_of_no_further_than_now_plus_skew(
    sink_schema: SinkSchema,
) -> None:
    clock = [NOW]
    sink = _sink(sink_schema, clock=lambda: clock[0], max_clock_skew=SKEW)
    h = _harness(sink)
    h.produce("user-events", [_activity("a", "u1", NOW - timedelta(days=3)),
                              _activity("b", "u2", NOW - timedelta(hours=1))])  # fmt: skip
    h.run_until_idle()
    assert _watermark(sink) == NOW - timedelta(hours=1)
    h.produce("user-events", [_activity("c", "u3", Y2099)])  # a front end's clock gone wrong
    h.run_until_idle()
    assert _watermark(sink) == NOW + SKEW
    # The event itself counts, with its own time; the others' recency is not 0.
    assert _rows(sink, "SELECT total_events, last_active FROM user_stats WHERE user_id = 'u3'") == [
        (1, Y2099)
    ]
    _scores_as_of(sink, NOW + SKEW)
    [(u1_engagement,)] = _rows(sink, "SELECT engagement_score FROM user_stats WHERE user_id = 'u1'")
    assert u1_engagement > scores(1, Decimal(50), NOW - timedelta(days=3), Y2099).engagement_score
    skewed = {"service": "stats-aggregator", "topic": "user-events"}
    assert sink.metrics_registry.get_sample_value("stats_clock_skewed_records_total", skewed) == 1
    # Ten minutes later, on-time events move the watermark on: 2099 holds nothing.
    clock[0] = NOW + timedelta(minutes=10)
    h.produce("user-events", [_activity("d", "u2", NOW + timedelta(minutes=9))])
    h.run_until_idle()
    assert _watermark(sink) == NOW + timedelta(minutes=9)
    _scores_as_of(sink, NOW + timedelta(minutes=9))
    h.shutdown()


def test_a_watermark_poisoned_before_the_rule_heals_on_the_next_batch(
    sink_schema: SinkSchema,
) -> None:
    clock = [NOW]
    sink = _sink(sink_schema, clock=lambda: clock[0], max_clock_skew=SKEW)
    h = _harness(sink)
    h.produce("user-events", [_activity("a", "u1", NOW - timedelta(days=3))])
    h.run_until_idle()
    # What the unbounded GREATEST left behind after one event dated 2099.
    with sink.engine.begin() as conn:
        conn.execute(sa.text("UPDATE activity_watermark SET max_event_at = :at"), {"at": Y2099})
    _scores_as_of(sink, Y2099)  # recency 0 for everyone: frozen
    h.produce("user-events", [_activity("b", "u2", NOW - timedelta(minutes=1))])
    h.run_until_idle()
    assert _watermark(sink) == NOW + SKEW  # pulled back by the next batch
    _scores_as_of(sink, NOW + SKEW)
    clock[0] = NOW + timedelta(minutes=10)
    h.produce("user-events", [_activity("c", "u1", NOW + timedelta(minutes=10))])
    h.run_until_idle()
    assert _watermark(sink) == NOW + timedelta(minutes=10)
    _scores_as_of(sink, NOW + timedelta(minutes=10))
    h.shutdown()
