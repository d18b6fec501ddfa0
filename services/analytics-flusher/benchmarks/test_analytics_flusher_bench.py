"""Throughput of the flusher, in one run over the same records on the embedded broker:

1. raw consume (confluent-kafka, no parsing),
2. consume + parse: the real runtime loop with the service's decoder (Debezium JSON with
   schemas -> changes, ``Parser.parse_view``) and a sink that only counts: the raw limit of
   one process,
3. aggregate + flush into memory (``LakeSink.write_batch`` over the decoded changes, Parquet
   encoded, no S3 round trips: the CPU cost of windows + Parquet),
4. end to end: the real runtime loop (consume, decode, fold) with the S3 sink, its objects
   kept in memory (the flusher's own limit) and then on the AWS emulator, from the first batch
   until every record is folded and every object written (the final flush included), with
   the per-batch time of the sink,
5. end to end with ``BENCH_REPLICAS`` (default 2) processes in one consumer group, each the
   runtime with the S3 sink as in 4: from the first batch any of them handles until the last
   one has flushed its final windows on shutdown (group joins and rebalances included).

Two event-time densities: ``sparse`` (an order every 100 ms of source time: a window part of
9 objects every ~1,000 records per partition: a backlog of a quiet shop, where the emulator's
PUTs are the limit) and ``dense`` (an order every millisecond: one or two windows per
partition: a busy source, where objects are few per record).

Figures are printed, not asserted. Run:
``.venv/bin/pytest services/analytics-flusher/benchmarks -m benchmark -s``
(``BENCH_ORDERS`` sets the number of order changes, default 100,000, each with one order line).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from analytics_flusher import Decoder, LakeSink, S3Store, WindowConfig
from confluent_kafka import Consumer
from consumer_runtime import Batch, InMemoryMessage, TopicPartition
from devstack import AwsEmulator, produce

from ._common import BATCH, N_ORDERS, T0_MS, TimedSink, percentiles, records, run_timed

REPLICAS = int(os.environ.get("BENCH_REPLICAS", "2"))
DENSITIES = {"sparse": 100, "dense": 1}  # source time between two orders, ms


class NullStore:
    def __init__(self) -> None:
        self.bytes = 0

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.bytes += len(body)

    def healthy(self) -> bool:
        return True


def consume_all(bootstrap: str, topics: list[str], n: int) -> float:
    """Raw consume: every record fetched, nothing parsed."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    seen = 0
    started = None
    deadline = time.monotonic() + 120
    while seen < n and time.monotonic() < deadline:
        batch = consumer.consume(BATCH, 1.0)
        if batch and started is None:
            started = time.perf_counter()
        seen += sum(1 for m in batch if not m.error())
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    assert seen == n, f"consumed {seen} of {n}"
    return elapsed


def decode_all(
    orders_topic: str,
    orders: list[tuple[bytes, bytes]],
    items_topic: str,
    items: list[tuple[bytes, bytes]],
) -> list[Any]:
    """The decoded changes of every record, spread over three partitions per topic."""
    decode = Decoder()
    out = []
    for topic, pairs in ((orders_topic, orders), (items_topic, items)):
        for i, (key, value) in enumerate(pairs):
            partition, offset = i % 3, i // 3
            message = InMemoryMessage(topic, partition, offset, key, value)
            out.append((TopicPartition(topic, partition), decode(message)))
    return out


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


REPLICA = Path(__file__).with_name("replica.py")


def replicas_rate(
    bootstrap: str, topics: list[str], n: int, bucket: str, env: dict[str, str]
) -> float:
    """``REPLICAS`` flusher processes (``replica.py``: the service's ``run_service`` with its
    sink reporting each batch) in one group, from the first batch any of them handled until
    the last of them finished the final flush of its SIGTERM."""
    environ = {
        **os.environ,
        **env,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPICS": ",".join(topics),
        "KAFKA_GROUP_ID": f"bench-replicas-{time.monotonic_ns()}",
        "KAFKA_CONSUMER_EXTRA": '{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}',
        "BATCH_SIZE": str(BATCH),
        "BATCH_MAX_WAIT_MS": "100",
        "HEALTH_PORT": "0",
        "S3_BUCKET": bucket,
        "LOG_LEVEL": "WARNING",
    }
    lines: queue.Queue[tuple[int, str]] = queue.Queue()
    procs: list[subprocess.Popen[str]] = []

    def pump(i: int, out: Any) -> None:
        for line in out:
            lines.put((i, line))

    for i in range(REPLICAS):
        proc = subprocess.Popen(
            [sys.executable, str(REPLICA)], env=environ, stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        threading.Thread(target=pump, args=(i, proc.stdout), daemon=True).start()
    try:
        seen, first = 0, 0.0
        flushed: dict[int, float] = {}
        deadline = time.monotonic() + 600
        while len(flushed) < REPLICAS:
            assert time.monotonic() < deadline, f"replicas: {seen} of {n} records in 600 s"
            try:
                i, line = lines.get(timeout=1)
            except queue.Empty:
                assert seen >= n or all(p.poll() is None for p in procs), "a replica exited"
                continue
            parts = line.split()
            if parts[:1] == ["batch"]:
                seen += int(parts[1])
                first = first or float(parts[2])
                if seen >= n:
                    for proc in procs:
                        proc.send_signal(signal.SIGTERM)
            elif parts[:1] == ["flushed"]:
                flushed[i] = float(parts[1])
        assert seen == n, f"{seen} records folded, {n} produced"
        return n / (max(flushed.values()) - first)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("density", list(DENSITIES))
def test_flusher_throughput(
    density: str,
    kafka_bootstrap: str,
    make_topic: Any,
    aws_emulator: AwsEmulator,
    aws_env: dict[str, str],
    s3_bucket: str,
) -> None:
    orders_topic = make_topic(3, name=f"bench{time.monotonic_ns()}.public.orders")
    items_topic = make_topic(3, name=f"bench{time.monotonic_ns()}.public.order_items")
    orders, items = records(T0_MS, DENSITIES[density])
    produce(kafka_bootstrap, orders_topic, orders)
    produce(kafka_bootstrap, items_topic, items)
    n = len(orders) + len(items)
    topics = [orders_topic, items_topic]

    raw_s = consume_all(kafka_bootstrap, topics, n)
    parse_s = run_timed(kafka_bootstrap, topics, TimedSink(None, n))
    decoded = decode_all(orders_topic, orders, items_topic, items)
    cfg = WindowConfig()
    null = NullStore()
    memory_s = aggregate(LakeSink(null, cfg), decoded)
    in_memory_s = run_timed(kafka_bootstrap, topics, TimedSink(LakeSink(NullStore(), cfg), n))
    lake = LakeSink(S3Store(aws_emulator.client("s3"), s3_bucket), cfg)
    timed = TimedSink(lake, n)
    e2e_s = run_timed(kafka_bootstrap, topics, timed)
    many = replicas_rate(kafka_bootstrap, topics, n, f"{s3_bucket}-r", aws_env)
    span_s = N_ORDERS * DENSITIES[density] / 1000
    parse_rate = n / parse_s
    print()
    print(
        f"events: {n} ({N_ORDERS} order changes + {N_ORDERS} order lines over {span_s:,.0f} s "
        f"of source time: {density}), 3+3 partitions, batches of {BATCH}"
    )
    print(f"raw consume:                          {n / raw_s:>10,.0f} events/s")
    print(f"consume + parse (runtime, no sink):   {parse_rate:>10,.0f} events/s")
    print(f"aggregate + flush (Parquet, memory):  {n / memory_s:>10,.0f} events/s")
    print(f"end to end (runtime -> memory):       {n / in_memory_s:>10,.0f} events/s"
          f"  ({n / in_memory_s / parse_rate:.0%} of consume + parse)")  # fmt: skip
    print(f"end to end (runtime -> S3 emulator):  {n / e2e_s:>10,.0f} events/s"
          f"  ({n / e2e_s / parse_rate:.0%} of consume + parse)")  # fmt: skip
    print(f"  sink per batch: {percentiles(timed.latencies)}")
    print(f"  objects: {lake.stats['objects']}, Parquet bytes: {lake.stats['bytes']:,}")
    print(f"end to end, {REPLICAS} processes (one group): {many:>10,.0f} events/s"
          f"  ({many / parse_rate:.0%} of one process's consume + parse)")  # fmt: skip
