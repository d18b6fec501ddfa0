"""The sweep after a new Debezium snapshot, on real PostgreSQL through the real consumer loop.

Debezium lost its offsets: what changed at the source meanwhile reaches Kafka only as the reads
of a new snapshot, and the rows deleted meanwhile not at all. The last read of each table
carries the snapshot's sweep version; the sink deletes the table's rows below it. The source is
the shop's schema (``devstack``'s DDL) in a schema of its own, so the read model is compared
with ``verify`` (the truth of that source) and with a read model built from the new snapshot
alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg2.extensions
import psycopg2.extras
import pytest
import sqlalchemy as sa
from cdc_events.testing import make_change
from consumer_runtime import CommitStrategy
from consumer_runtime.testing import SinkHarness
from devstack import SHOP_DDL, PostgresServer
from devstack.pytest_plugin import SinkSchema
from sink_kit.postgres import make_engine, upgrade_schema
from stats_aggregator import Decoder, StatsSink, verify
from stats_aggregator.store import MIGRATION_LOCK, MIGRATIONS

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
S1 = 10_000_000  # the consistent point of the first snapshot
S2 = 20_000_000  # of the snapshot taken after the offsets were lost
THRESHOLD = 10
TABLES = ("customers", "products", "orders", "order_items")
SWEPT = "stats_swept_rows_total"


def _topic(table: str) -> str:
    return f"dbserver1.public.{table}"


def _value(record: Any) -> bytes:
    return record.value.encode() if isinstance(record.value, str) else record.value


class Shop:
    """The source database: the shop's tables in a schema of their own."""

    def __init__(self, conn: psycopg2.extensions.connection) -> None:
        self.conn = conn

    def put(self, table: str, **row: Any) -> dict[str, Any]:
        """Update the row's given columns, or insert it; returns the row as it now is."""
        key = row.pop("id")
        with self.conn.cursor() as cur:
            sets = ", ".join(f"{c} = %s" for c in row)
            cur.execute(f"UPDATE {table} SET {sets} WHERE id = %s", [*row.values(), key])
            if cur.rowcount == 0:
                if table == "customers":
                    row = {"email": f"c{key}@shop.test", "name": f"c{key}"} | row
                row = {"id": key} | row
                cur.execute(
                    f"INSERT INTO {table} ({', '.join(row)}) "
                    f"VALUES ({', '.join(['%s'] * len(row))})",
                    list(row.values()),
                )
        return self.row(table, key)

    def delete(self, table: str, key: int) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"DELETE FROM {table} WHERE id = %s", (key,))

    def row(self, table: str, key: int) -> dict[str, Any]:
        [row] = self.rows(table, f"WHERE id = {int(key)}")
        return row

    def rows(self, table: str, where: str = "") -> list[dict[str, Any]]:
        with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(f"SELECT * FROM {table} {where} ORDER BY id")
            return [dict(r) for r in cur.fetchall()]

    def snapshot(self, point: int) -> dict[str, dict[int, bytes]]:
        """Debezium's snapshot at ``point``: every row read, per table and key; the last read
        of each table is ``last_in_data_collection`` (of the last table: ``last``)."""
        out: dict[str, dict[int, bytes]] = {}
        for table in TABLES:
            rows = self.rows(table)
            out[table] = {}
            for i, row in enumerate(rows):
                mark = "true"
                if i == len(rows) - 1:
                    mark = "last" if table == TABLES[-1] else "last_in_data_collection"
                record = make_change("r", table=table, after=row, lsn=point, snapshot=mark)
                out[table][row["id"]] = _value(record)
        return out


def streamed(op: str, table: str, row: dict[str, Any], lsn: int, commit: int) -> bytes:
    """A streamed change; ``commit`` is the commit LSN of the transaction emitted before it."""
    if op == "d":
        record = make_change("d", table=table, before={"id": row["id"]}, lsn=lsn,
                             sequence=(commit, lsn))  # fmt: skip
    else:
        record = make_change(op, table=table, after=row, lsn=lsn, sequence=(commit, lsn))
    return _value(record)


def _schema(server: PostgresServer, name: str) -> Iterator[SinkSchema]:
    conn = server.connect("sink")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {name}")
    yield SinkSchema(server, "sink", name)
    with conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    conn.close()


@pytest.fixture
def shop(sink_schema: SinkSchema) -> Iterator[Shop]:
    """The shop's source tables, in a schema next to the read model's."""
    schemas = _schema(sink_schema.server, f"{sink_schema.schema}_src")
    schema = next(schemas)
    conn = schema.server.connect("sink")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"SET search_path TO {schema.schema}")
        cur.execute(SHOP_DDL)
    yield Shop(conn)
    conn.close()
    next(schemas, None)


@pytest.fixture
def fresh_schema(sink_schema: SinkSchema) -> Iterator[SinkSchema]:
    """A second read model's schema."""
    yield from _schema(sink_schema.server, f"{sink_schema.schema}_fresh")


def _sink(schema: SinkSchema) -> StatsSink:
    engine = make_engine(schema.url)
    upgrade_schema(engine, MIGRATIONS, MIGRATION_LOCK)
    return StatsSink(engine, group="g", threshold=THRESHOLD)


def _harness(sink: StatsSink) -> SinkHarness[Any]:
    return SinkHarness(sink, Decoder(), strategy=CommitStrategy.SINK_MANAGED, batch_size=50)


def _rows(engine: sa.Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


# Every statistic with every column (also those ``verify`` does not compare) and the live
# states: what a read model built from the source holds.
_MODEL = {
    "customer_stats": "SELECT customer_id, known, country, orders_count, paid_or_shipped_count, "
    "cancelled_count, total_spent, live_orders, avg_order_value, first_order_at, last_order_at "
    "FROM customer_stats",
    "product_stats": "SELECT product_id, name, price, stock, low_stock, deleted, units_sold, "
    "revenue, item_refs FROM product_stats",
    "daily_sales": "SELECT day, orders, revenue FROM daily_sales",
    "order_status_counts": "SELECT status, count FROM order_status_counts",
    "st_customers": "SELECT id, country FROM st_customers WHERE NOT deleted",
    "st_products": "SELECT id, name, price, stock FROM st_products WHERE NOT deleted",
    "st_orders": "SELECT id, customer_id, status, total, created_at FROM st_orders "
    "WHERE NOT deleted",
    "st_order_items": "SELECT id, order_id, product_id, quantity, unit_price "
    "FROM st_order_items WHERE NOT deleted",
}


def model(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    return {name: sorted(_rows(engine, sql)) for name, sql in _MODEL.items()}


def differences(engine: sa.Engine, shop: Shop) -> dict[str, str]:
    """``verify``'s checks of the read model against the source that fail."""
    checks = verify.compare(engine, shop.conn, [], THRESHOLD)
    return {c.name: c.detail for c in checks if not c.ok}


def swept(sink: StatsSink, table: str) -> float:
    labels = {"service": "stats-aggregator", "table": table}
    return sink.metrics_registry.get_sample_value(SWEPT, labels) or 0.0


def test_a_new_snapshot_sweeps_the_rows_deleted_while_debezium_had_no_offsets(
    sink_schema: SinkSchema, fresh_schema: SinkSchema, shop: Shop
) -> None:
    sink = _sink(sink_schema)
    h = _harness(sink)
    engine = sink.engine

    # Generation 1: the first snapshot, then streamed changes.
    for cid, country in ((1, "DE"), (2, "FR"), (3, "US")):
        shop.put("customers", id=cid, country=country)
    for pid, name, price, stock in ((1, "Cup", "10.00", 50), (2, "Pot", "25.00", 20),
                                    (3, "Mug", "8.00", 12)):  # fmt: skip
        shop.put("products", id=pid, name=name, price=Decimal(price), stock=stock)
    for oid, cid, status, total, at in ((10, 1, "paid", "30.00", T0),
                                        (11, 2, "paid", "66.00", T0 + DAY),
                                        (12, 3, "pending", "8.00", T0 + DAY)):  # fmt: skip
        shop.put("orders", id=oid, customer_id=cid, status=status, total=Decimal(total),
                 created_at=at)  # fmt: skip
    for iid, oid, pid, qty, unit in ((100, 10, 1, 3, "10.00"), (101, 11, 2, 2, "25.00"),
                                     (102, 11, 3, 2, "8.00"), (103, 12, 3, 1, "8.00")):  # fmt: skip
        shop.put("order_items", id=iid, order_id=oid, product_id=pid, quantity=qty,
                 unit_price=Decimal(unit))  # fmt: skip
    for table, reads in shop.snapshot(S1).items():
        h.produce(_topic(table), list(reads.values()))
    shipped_12 = streamed("u", "orders", shop.put("orders", id=12, status="shipped"),
                          S1 + 200, S1 + 100)  # fmt: skip
    h.produce(_topic("orders"), [shipped_12])
    h.produce(_topic("products"), [streamed("u", "products", shop.put("products", id=3, stock=9),
                                            S1 + 300, S1 + 250)])  # fmt: skip
    h.run_until_idle()
    assert not differences(engine, shop)
    assert sink.stats["swept"] == 0  # the first snapshot: nothing below it
    # A customer created (and deleted, below) in generation 1 whose creation waits in a
    # partition lagging behind: the read model has never seen it when the sweep runs.
    customer_5 = streamed("c", "customers", shop.put("customers", id=5, country="SE"),
                          S1 + 400, S1 + 350)  # fmt: skip
    # Customer 3's state was stored before versions, order 12's with the old version form.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE st_customers SET pos_version = NULL WHERE id = 3"))
        conn.execute(sa.text("UPDATE st_orders SET pos_version = :v WHERE id = 12"),
                     {"v": f"p1{S1 + 100:020d}{S1 + 200:020d}"})  # fmt: skip

    # Debezium runs without its offsets: none of this is streamed.
    for iid in (101, 102):
        shop.delete("order_items", iid)
    shop.delete("orders", 11)  # customer 2's only order: spend, units of products 2 and 3
    shop.delete("order_items", 103)
    shop.delete("orders", 12)
    shop.delete("customers", 3)
    shop.delete("customers", 5)
    shop.delete("products", 3)  # no line refers to it any more: gone from the statistics
    shop.put("products", id=2, stock=5)
    shop.put("orders", id=10, status="shipped")
    shop.put("customers", id=4, country="GB")
    shop.put("orders", id=13, customer_id=4, status="paid", total=Decimal("20.00"),
             created_at=T0 + 2 * DAY)  # fmt: skip
    shop.put("order_items", id=104, order_id=13, product_id=1, quantity=2,
             unit_price=Decimal("10.00"))  # fmt: skip

    # Generation 2: a new snapshot, then streamed changes. Product 2's read is the last of
    # products and line 104's the last of all: their partitions (1) carry the markers, and
    # product 1 and line 100 are read in partition 0.
    reads = shop.snapshot(S2)
    after_snapshot = [
        ("products", streamed("u", "products", shop.put("products", id=1, stock=40),
                              S2 + 50, S2 + 10)),
        ("orders", streamed("c", "orders", shop.put("orders", id=14, customer_id=1,
                            status="pending", total=Decimal("25.00"), created_at=T0 + 2 * DAY),
                            S2 + 70, S2 + 60)),
        ("order_items", streamed("c", "order_items", shop.put("order_items", id=105,
                                 order_id=14, product_id=2, quantity=1,
                                 unit_price=Decimal("25.00")), S2 + 71, S2 + 60)),
    ]  # fmt: skip
    # Product 1's read and its later change are applied before the products marker.
    h.produce(_topic("products"), [reads["products"][1], after_snapshot[0][1]])
    h.run_until_idle()
    # The order lines' marker before line 100's read (partition 0 lags): line 100 is swept too,
    # with every line the new snapshot did not read.
    h.produce(_topic("order_items"), [reads["order_items"][104]], partition=1)
    h.run_until_idle()
    lines = "SELECT id FROM st_order_items WHERE NOT deleted ORDER BY id"
    assert _rows(engine, lines) == [(104,)]
    assert swept(sink, "order_items") == 4
    # Line 100's 3 cups are gone with it (for now), line 104's wait for their order.
    assert _rows(engine, "SELECT units_sold FROM product_stats WHERE product_id = 1") == [(0,)]
    # The rest: customers, orders (and order 14 after them), product 2 (the products marker),
    # line 100's read (restoring it) and line 105.
    h.produce(_topic("customers"), list(reads["customers"].values()))
    h.produce(_topic("orders"), [*reads["orders"].values(), after_snapshot[1][1]])
    h.produce(_topic("products"), [reads["products"][2]], partition=1)
    h.produce(_topic("order_items"), [reads["order_items"][100], after_snapshot[2][1]])
    h.run_until_idle()
    assert not differences(engine, shop)
    assert _rows(engine, lines) == [(100,), (104,), (105,)]
    assert {t: swept(sink, t) for t in TABLES} == {
        "customers": 1,  # 3 (stored before versions); 5 was never stored
        "products": 1,  # 3 (product 1 was changed after the snapshot, 2 read before its marker)
        "orders": 2,  # 11 and 12 (12 with an old-form version)
        "order_items": 4,  # 100 (its read came later), 101, 102, 103
    }
    sweep_version = f"q{S2:020d}0{0:040d}"
    for table, key in (("customers", 3), ("orders", 11), ("orders", 12), ("products", 3),
                       ("order_items", 103)):  # fmt: skip
        state = f"SELECT deleted, pos_version FROM st_{table} WHERE id = {key}"
        assert _rows(engine, state) == [(True, sweep_version)], (table, key)
    assert _rows(engine, "SELECT source_table, version FROM st_sweeps ORDER BY 1") == [
        (t, sweep_version) for t in sorted(TABLES)
    ]
    after_sweeps = model(engine)

    # A marker delivered again (a redelivery, a re-emit) sweeps nothing more.
    h.produce(_topic("order_items"), [reads["order_items"][104]], partition=1)
    h.produce(_topic("orders"), [reads["orders"][13]])
    h.run_until_idle()
    assert model(engine) == after_sweeps
    assert swept(sink, "order_items") == 4 and swept(sink, "orders") == 2
    # Older changes arriving after the sweep resurrect nothing: a dead-letter replay of order
    # 12's change and of the first snapshot's read of order 11, and customer 5's creation from
    # the lagging partition (a key never stored: the table's sweep version stops it).
    skipped = sink.stats["reemits_skipped"]
    h.produce(_topic("orders"), [shipped_12, _value(make_change(
        "r", table="orders", after={"id": 11, "customer_id": 2, "status": "paid",
                                    "total": Decimal("66.00"), "created_at": T0 + DAY},
        lsn=S1, snapshot="true"))])  # fmt: skip
    h.produce(_topic("customers"), [customer_5], partition=1)
    h.run_until_idle()
    assert sink.stats["reemits_skipped"] == skipped + 3
    assert model(engine) == after_sweeps
    assert not differences(engine, shop)

    # A read model built from the new snapshot and what followed it holds the same.
    fresh = _sink(fresh_schema)
    f = _harness(fresh)
    for table in TABLES:
        f.produce(_topic(table), list(reads[table].values()))
    for table, value in after_snapshot:
        f.produce(_topic(table), [value])
    f.run_until_idle()
    assert model(fresh.engine) == after_sweeps
    f.shutdown()
    h.shutdown()


def test_a_sweep_that_fails_is_retried_with_its_batch_and_its_offsets(
    sink_schema: SinkSchema, shop: Shop
) -> None:
    sink = _sink(sink_schema)
    h = _harness(sink)
    engine = sink.engine
    shop.put("customers", id=1, country="DE")
    for oid in (1, 2, 3):
        shop.put("orders", id=oid, customer_id=1, status="paid", total=Decimal("10.00"),
                 created_at=T0)  # fmt: skip
    for table, reads in shop.snapshot(S1).items():
        h.produce(_topic(table), list(reads.values()))
    h.run_until_idle()
    shop.delete("orders", 2)
    shop.delete("orders", 3)
    # The first write of a swept state fails as a serialization failure would.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """
                CREATE SEQUENCE sweep_failures;
                CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF nextval('sweep_failures') = 1 THEN
                        RAISE EXCEPTION 'simulated conflict' USING ERRCODE = '40001';
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER fail_once BEFORE UPDATE ON st_orders FOR EACH ROW
                    WHEN (NEW.deleted AND NOT OLD.deleted) EXECUTE FUNCTION fail_once();
                """
            )
        )
    offsets = "SELECT next_offset FROM consumer_offsets WHERE topic = 'dbserver1.public.orders'"
    assert _rows(engine, offsets) == [(3,)]
    live = "SELECT id FROM st_orders WHERE NOT deleted ORDER BY id"
    h.produce(_topic("orders"), list(shop.snapshot(S2)["orders"].values()))
    # The batch with the marker fails in its sweep: a retryable store error, so the loop
    # retries the whole batch (the marker's read, the sweep, the offsets), which then commits.
    h.run_until_idle()
    assert h.metric("cdc_retries_total", service="test-service") == 1
    assert _rows(engine, "SELECT last_value FROM sweep_failures") == [(3,)]  # 1 failed, 2 swept
    assert _rows(engine, offsets) == [(4,)]
    assert _rows(engine, live) == [(1,)]
    assert _rows(engine, "SELECT pos_version FROM st_orders WHERE id = 1") == [
        (f"q{S2:020d}1{S2:020d}{S2:020d}",)
    ]
    assert swept(sink, "orders") == 2 and sink.stats["swept"] == 2  # counted once committed
    assert not differences(engine, shop)
    h.shutdown()
