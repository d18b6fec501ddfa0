"""Throughput of the flusher, in one run over the same records on the embedded broker:

1. raw consume (confluent-kafka, no parsing),
2. consume + parse (the service's decoder: Debezium JSON with schemas -> changes),
3. aggregate + flush into memory (``LakeSink.write_batch`` over the decoded changes, Parquet
   encoded, no S3 round trips: the CPU cost of windows + Parquet),
4. end to end: the real runtime loop (consume, decode, fold) with the S3 sink on the AWS
   emulator, from the first batch until every record is folded and every object written
   (the final flush included), with the per-batch time of the sink.

Two event-time densities: ``sparse`` (an order every 100 ms of source time: 67 minutes, 13-14
windows per partition, a window part of 9 objects every ~1,000 records per partition: a
backlog of a quiet shop) and ``dense`` (an order every millisecond: 40 s, one window per
partition: a busy source, where objects are few per record).

Figures are printed, not asserted. Run:
``.venv/bin/pytest services/analytics-flusher/benchmarks -m benchmark -s``.
"""

from __future__ import annotations

import statistics
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from analytics_flusher import Decoder, FlusherSettings, LakeSink, S3Store, WindowConfig
from cdc_events.testing import make_change
from confluent_kafka import Consumer
from consumer_runtime import (
    BaseSink,
    Batch,
    CommitStrategy,
    InMemoryMessage,
    Offsets,
    Runtime,
    TopicPartition,
)
from consumer_runtime.testing import run_until
from devstack import AwsEmulator, produce
from prometheus_client import CollectorRegistry

N_ORDERS = 40_000
BATCH = 500
DENSITIES = {"sparse": 100, "dense": 1}  # source time between two orders, ms


class NullStore:
    def __init__(self) -> None:
        self.bytes = 0

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.bytes += len(body)

    def healthy(self) -> bool:
        return True


def records(
    t0: int, step_ms: int = 100
) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    orders, items = [], []
    for i in range(N_ORDERS):
        ts = t0 + i * step_ms
        created = datetime.fromtimestamp(ts / 1000, UTC)
        status = ("pending", "paid", "shipped", "cancelled")[i % 4]
        op = "c" if status == "pending" else "u"
        row = {
            "id": i // 4 + 1,
            "customer_id": i % 500,
            "status": status,
            "total": Decimal(f"{i % 997}.{i % 100:02d}"),
            "created_at": created,
        }
        rec = make_change(op, table="orders", after=row, source_ts_ms=ts, with_schema=True)
        orders.append((rec.key or b"", rec.value or b""))
        line = {
            "id": i + 1,
            "order_id": i // 4 + 1,
            "product_id": i % 300,
            "quantity": 1 + i % 3,
            "unit_price": Decimal("9.99"),
        }
        irec = make_change("c", table="order_items", after=line, source_ts_ms=ts, with_schema=True)
        items.append((irec.key or b"", irec.value or b""))
    return orders, items


def consume_all(bootstrap: str, topics: list[str], n: int, parse: Any) -> tuple[float, list[Any]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    out: list[Any] = []
    seen = 0
    started = None
    deadline = time.monotonic() + 120
    while seen < n and time.monotonic() < deadline:
        batch = consumer.consume(BATCH, 1.0)
        if batch and started is None:
            started = time.perf_counter()
        for m in batch:
            if m.error():
                continue
            seen += 1
            if parse is not None:
                msg = InMemoryMessage(m.topic(), m.partition(), m.offset(), m.key(), m.value())
                out.append((TopicPartition(m.topic(), m.partition()), parse(msg)))
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    assert seen == n, f"consumed {seen} of {n}"
    return elapsed, out


def aggregate(sink: LakeSink, decoded: list[Any]) -> float:
    """Hand ``decoded`` to the sink in batches of ``BATCH``, then flush."""
    started = time.perf_counter()
    for i in range(0, len(decoded), BATCH):
        batch: Batch[Any] = Batch()
        for tp, change in decoded[i : i + BATCH]:
            batch.records.setdefault(tp, []).append(change)
            batch.next_offsets[tp] = change.offset + 1
        sink.write_batch(batch)
    sink.flush()
    return time.perf_counter() - started


class TimedSink(BaseSink[Any]):
    """The S3 sink, timed: from the first batch until the last record is folded and every
    object written (``flush``); per-batch times of ``write_batch``."""

    def __init__(self, inner: LakeSink, target: int) -> None:
        self.inner = inner
        self.target = target
        self.seen = 0
        self.first = self.last = 0.0
        self.done = threading.Event()
        self.latencies: list[float] = []

    def write_batch(self, batch: Batch[Any]) -> Offsets | None:
        t0 = time.perf_counter()
        self.first = self.first or t0
        result = self.inner.write_batch(batch)
        self.latencies.append(time.perf_counter() - t0)
        self.seen += sum(len(r) for r in batch.records.values())
        if self.seen >= self.target and not self.done.is_set():
            self.inner.flush()
            self.last = time.perf_counter()
            self.done.set()
        return result

    def tick(self) -> Offsets | None:
        return self.inner.tick()

    def flush(self) -> Offsets | None:
        return self.inner.flush()

    def on_revoke(self, partitions: Any) -> Offsets | None:
        return self.inner.on_revoke(partitions)

    def on_lost(self, partitions: Any) -> None:
        self.inner.on_lost(partitions)

    def close(self) -> None:
        self.inner.close()


def end_to_end(bootstrap: str, topics: list[str], sink: TimedSink) -> float:
    settings = FlusherSettings(
        kafka_bootstrap_servers=bootstrap,
        kafka_topics=tuple(topics),
        kafka_group_id=f"bench-e2e-{time.monotonic_ns()}",
        batch_size=BATCH,
        batch_max_wait_ms=100,
        health_port=0,
        kafka_consumer_extra={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )
    runtime: Runtime[Any] = Runtime(
        "analytics-flusher",
        settings,
        Decoder(),
        sink,
        CommitStrategy.COMMIT_AFTER_FLUSH,
        registry=CollectorRegistry(),
    )
    assert run_until(runtime, sink.done), f"only {sink.seen} of {sink.target} records folded"
    return sink.last - sink.first


def percentiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms over {len(samples)} batches"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("density", list(DENSITIES))
def test_flusher_throughput(
    density: str,
    kafka_bootstrap: str,
    make_topic: Any,
    aws_emulator: AwsEmulator,
    s3_bucket: str,
) -> None:
    orders_topic = make_topic(3, name=f"bench{time.monotonic_ns()}.public.orders")
    items_topic = make_topic(3, name=f"bench{time.monotonic_ns()}.public.order_items")
    orders, items = records(1_767_225_600_000, DENSITIES[density])
    produce(kafka_bootstrap, orders_topic, orders)
    produce(kafka_bootstrap, items_topic, items)
    n = len(orders) + len(items)
    topics = [orders_topic, items_topic]

    raw_s, _ = consume_all(kafka_bootstrap, topics, n, None)
    parse_s, decoded = consume_all(kafka_bootstrap, topics, n, Decoder())
    cfg = WindowConfig()
    null = NullStore()
    memory_s = aggregate(LakeSink(null, cfg), decoded)
    lake = LakeSink(S3Store(aws_emulator.client("s3"), s3_bucket), cfg)
    timed = TimedSink(lake, n)
    e2e_s = end_to_end(kafka_bootstrap, topics, timed)
    span_s = N_ORDERS * DENSITIES[density] / 1000
    print()
    print(
        f"events: {n} ({N_ORDERS} order changes + {N_ORDERS} order lines over {span_s:,.0f} s "
        f"of source time: {density}), 3+3 partitions, batches of {BATCH}"
    )
    print(f"raw consume:                          {n / raw_s:>10,.0f} events/s")
    print(f"consume + parse:                      {n / parse_s:>10,.0f} events/s")
    print(f"aggregate + flush (Parquet, memory):  {n / memory_s:>10,.0f} events/s")
    print(f"end to end (runtime -> S3 emulator):  {n / e2e_s:>10,.0f} events/s"
          f"  ({n / e2e_s / (n / parse_s):.0%} of consume + parse)")  # fmt: skip
    print(f"  sink per batch: {percentiles(timed.latencies)}")
    print(f"  objects: {lake.stats['objects']}, Parquet bytes: {lake.stats['bytes']:,}")
