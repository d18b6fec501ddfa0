"""Throughput of the flusher, in one run over the same records on the embedded broker:

1. raw consume (confluent-kafka, no parsing),
2. consume + parse (the service's decoder: Debezium JSON with schemas -> changes),
3. aggregate + flush (``LakeSink.write_batch`` over the decoded changes, windows closed by the
   watermark and written as Parquet to the AWS emulator, then the final flush),
4. the same aggregate + flush into memory (no S3 round trips: the CPU cost of windows + Parquet).

Figures are printed, not asserted. Run:
``.venv/bin/pytest services/analytics-flusher/benchmarks -m benchmark -s``.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from analytics_flusher import Decoder, LakeSink, S3Store, WindowConfig
from cdc_events.testing import make_change
from confluent_kafka import Consumer
from consumer_runtime import Batch, InMemoryMessage, TopicPartition
from devstack import AwsEmulator, produce

N_ORDERS = 40_000
ITEMS_PER_ORDER = 1
STEP_MS = 100  # event time between orders: 40k orders span ~67 minutes, ~13 windows of 5 min
BATCH = 500


class NullStore:
    def __init__(self) -> None:
        self.bytes = 0

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.bytes += len(body)

    def healthy(self) -> bool:
        return True


def records(t0: int) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    orders, items = [], []
    for i in range(N_ORDERS):
        ts = t0 + i * STEP_MS
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


def aggregate(sink: LakeSink, decoded: list[Any], latencies: list[float] | None = None) -> float:
    """Hand ``decoded`` to the sink in batches of ``BATCH``; per-batch times go to
    ``latencies`` (a batch that closes windows includes their Parquet encoding and PUTs)."""
    started = time.perf_counter()
    for i in range(0, len(decoded), BATCH):
        batch: Batch[Any] = Batch()
        for tp, change in decoded[i : i + BATCH]:
            batch.records.setdefault(tp, []).append(change)
            batch.next_offsets[tp] = change.offset + 1
        t0 = time.perf_counter()
        sink.write_batch(batch)
        if latencies is not None:
            latencies.append(time.perf_counter() - t0)
    sink.flush()
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms over {len(samples)} batches"


@pytest.mark.timeout(900)
def test_flusher_throughput(
    kafka_bootstrap: str, make_topic: Any, aws_emulator: AwsEmulator, s3_bucket: str
) -> None:
    orders_topic = make_topic(3, name=f"bench{time.monotonic_ns()}.public.orders")
    items_topic = make_topic(3, name=f"bench{time.monotonic_ns()}.public.order_items")
    orders, items = records(1_767_225_600_000)
    produce(kafka_bootstrap, orders_topic, orders)
    produce(kafka_bootstrap, items_topic, items)
    n = len(orders) + len(items)
    topics = [orders_topic, items_topic]

    raw_s, _ = consume_all(kafka_bootstrap, topics, n, None)
    parse_s, decoded = consume_all(kafka_bootstrap, topics, n, Decoder())
    cfg = WindowConfig()
    null = NullStore()
    memory_s = aggregate(LakeSink(null, cfg, idle_thread=False), decoded)
    s3 = S3Store(aws_emulator.client("s3"), s3_bucket)
    latencies: list[float] = []
    lake_s = aggregate(LakeSink(s3, cfg, idle_thread=False), decoded, latencies)
    end_to_end = n / (parse_s + lake_s)
    print()
    print(f"events: {n} ({N_ORDERS} orders changes + {N_ORDERS} order lines), 3+3 partitions")
    print(f"raw consume:                       {n / raw_s:>10,.0f} events/s")
    print(f"consume + parse:                   {n / parse_s:>10,.0f} events/s")
    print(f"aggregate + flush (Parquet, memory): {n / memory_s:>8,.0f} events/s")
    print(f"aggregate + flush (Parquet -> S3 emulator): {n / lake_s:>,.0f} events/s")
    print(f"  per batch of {BATCH}: {percentiles(latencies)}")
    print(f"consume + parse + aggregate + flush: {end_to_end:>8,.0f} events/s")
    print(f"Parquet bytes written: {null.bytes:,}")
