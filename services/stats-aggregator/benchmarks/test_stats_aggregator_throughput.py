"""Throughput of the stats aggregator: events/s from the broker into the statistics, next to the
raw consume + parse rate of the same records in the same run.

A synthetic shop history in the connector's schema-enabled JSON form (customers and products
created, orders placed with their lines and stock updates, paid, shipped, cancelled with
restocks) plus user-activity events is produced to fresh topics; then

1. raw: read every record from the broker (no group) and decode it with the service's decoder;
2. aggregator: the real runtime loop with the PostgreSQL sink, from offset 0 to the last record.

Once with the converter's schemas on (each record repeats its ~2 KB schema; the default of the
embedded stack) and once with them off.

Run: ``.venv/bin/pytest services/stats-aggregator/benchmarks -p no:warnings -q -s``.
Figures are printed, not asserted.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from cdc_events.testing import make_change, make_user_activity
from consumer_runtime import Batch, CommitStrategy, InMemoryMessage, Runtime
from devstack import produce, read_topic
from devstack.pytest_plugin import SinkSchema
from sink_kit.postgres import make_engine, upgrade_schema
from stats_aggregator import Decoder, Settings, StatsSink
from stats_aggregator._model import Record
from stats_aggregator.store import MIGRATION_LOCK, MIGRATIONS

EVENTS = 60_000  # about 3 s of work at the target rate: enough batches for a steady figure
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def shop_history(
    n: int, tables: dict[str, str], users_topic: str, with_schema: bool = True
) -> dict[str, list[Any]]:
    rng = random.Random(7)
    out: dict[str, list[Any]] = {t: [] for t in [*tables.values(), users_topic]}
    lsn = 1_000_000
    total = 0
    stock: dict[int, int] = {}
    orders: dict[int, dict[str, Any]] = {}

    def emit(table: str, op: str, row: dict[str, Any]) -> None:
        nonlocal lsn, total
        lsn += 17
        record = make_change(
            op, table=table, after=row, lsn=lsn, tx_id=lsn, with_schema=with_schema
        )
        out[tables[table]].append((orjson.dumps({"id": row["id"]}), record.value))
        total += 1

    for c in range(1, 201):
        emit("customers", "c", {"id": c, "country": rng.choice(["DE", "FR", "US"])})
    for p in range(1, 301):
        stock[p] = rng.randint(20, 200)
        emit(
            "products", "c", {"id": p, "name": f"p{p}", "price": Decimal("9.99"), "stock": stock[p]}
        )
    order_id = item_id = 0
    while total < n:
        kind = rng.random()
        if kind < 0.3:
            e = make_user_activity(
                rng.choice(["view", "click", "purchase"]), event_id=f"e{total}",
                user_id=f"u{rng.randint(1, 500)}", amount=19.99,
                timestamp=(T0 + timedelta(seconds=total)).isoformat(),
            )  # fmt: skip
            out[users_topic].append((None, e))
            total += 1
        elif kind < 0.75 or not orders:
            order_id += 1
            at = T0 + timedelta(minutes=order_id)
            row = {"id": order_id, "customer_id": rng.randint(1, 200), "status": "pending",
                   "total": Decimal("19.98"), "created_at": at}  # fmt: skip
            lines = rng.sample(range(1, 301), 2)
            orders[order_id] = row
            emit("orders", "c", row)
            for p in lines:
                item_id += 1
                line = {"id": item_id, "order_id": order_id, "product_id": p, "quantity": 1,
                        "unit_price": Decimal("9.99")}  # fmt: skip
                emit("order_items", "c", line)
                stock[p] = max(0, stock[p] - 1)
                emit("products", "u", {"id": p, "name": f"p{p}", "price": Decimal("9.99"),
                                       "stock": stock[p]})  # fmt: skip
        else:
            oid = rng.choice(list(orders))
            status = rng.choice(["paid", "shipped", "cancelled"])
            orders[oid] = orders[oid] | {"status": status}
            emit("orders", "u", orders.pop(oid) if status != "paid" else orders[oid])
    return out


class TimedSink(StatsSink):
    """Records when the first batch arrived (the group join is not throughput) and how long
    each batch's write (fold + one transaction) took."""

    first_batch_at: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latencies: list[float] = []

    def write_batch(self, batch: Batch[Record]) -> Any:
        started = time.perf_counter()
        if self.first_batch_at is None:
            self.first_batch_at = started
        try:
            return super().write_batch(batch)
        finally:
            self.latencies.append(time.perf_counter() - started)


def _percentiles(samples: list[float]) -> str:
    if not samples:
        return "no batches"
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else None
    p50, p99 = (q[49], q[98]) if q else (ordered[0], ordered[0])
    return f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms over {len(ordered)} batches"


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>9,.0f} events/s ({n:,} in {seconds:.2f} s)"


@pytest.mark.parametrize("with_schema", [True, False], ids=["schemas", "schemaless"])
def test_throughput_into_the_statistics(
    with_schema: bool,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    sink_schema: SinkSchema,
    unique_id: str,
    kafka_group: str,
) -> None:
    tables = {t: make_topic(3, f"bench-{unique_id}.public.{t}")
              for t in ("customers", "products", "orders", "order_items")}  # fmt: skip
    users = make_topic(3, f"bench-{unique_id}-user-events")
    history = shop_history(EVENTS, tables, users, with_schema)
    n = sum(len(v) for v in history.values())
    for topic, records in history.items():
        produce(kafka_bootstrap, topic, records)

    # 1. Raw consume + parse, same records.
    decode = Decoder([users])
    start = time.perf_counter()
    fetched = read_topic(kafka_bootstrap, list(history), expected=n, timeout=120, idle=10)
    consumed = time.perf_counter() - start
    start = time.perf_counter()
    for r in fetched:
        decode(InMemoryMessage(r.topic, r.partition, r.offset, r.key, r.value))
    parsed = time.perf_counter() - start
    assert len(fetched) == n

    # 2. The aggregator: the runtime loop and the PostgreSQL sink.
    engine = make_engine(sink_schema.url, pool_size=2)
    upgrade_schema(engine, MIGRATIONS, MIGRATION_LOCK)
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topics=tuple(history),
        kafka_group_id=kafka_group,
        database_url=sink_schema.url,
        batch_size=5000,
        batch_max_wait_ms=100,
        kafka_consumer_extra={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )
    sink = TimedSink(engine, group=kafka_group)
    runtime: Runtime[Record] = Runtime(
        "stats-aggregator", settings, Decoder([users]), sink, CommitStrategy.SINK_MANAGED
    )
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    done = lambda: sum(  # noqa: E731
        sink.stats[k]
        for k in ("applied", "reemits_skipped", "user_events", "user_events_duplicate")
    )
    deadline = time.monotonic() + 300
    while done() < n:
        assert time.monotonic() < deadline and thread.is_alive(), f"{done()} of {n} applied"
        time.sleep(0.02)
    finished = time.perf_counter()
    runtime.stop()
    thread.join(30)
    assert sink.first_batch_at is not None
    elapsed = finished - sink.first_batch_at
    print()
    print(f"converter            JSON, schemas {'on' if with_schema else 'off'}")
    print(f"records              {n:,} ({len(history[users]):,} user events), "
          f"{sum(len(r.value or b'') for r in fetched) / n:,.0f} bytes/record")  # fmt: skip
    print(f"raw consume          {_rate(n, consumed)}")
    print(f"decode (parse)       {_rate(n, parsed)}")
    print(f"raw consume + parse  {_rate(n, consumed + parsed)}")
    print(f"broker -> statistics {_rate(n, elapsed)}  ({sink.stats['batches']} batches)")
    print(f"write per batch      {_percentiles(sink.latencies)}")
