"""Throughput of the runtime (consume + decode with orjson + no-op sink + commit) next to a raw
confluent-kafka loop doing consume + orjson.loads, on the same topic in the same run.

Run with ``make bench`` (or ``pytest libs/consumer-runtime/benchmarks -s``). Prints figures;
asserts nothing about timing. ``BENCH_RECORDS`` overrides the record count (default 200k x 1 KB).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition
from consumer_runtime import (
    BaseSink,
    Batch,
    CommitStrategy,
    Message,
    Offsets,
    Runtime,
    RuntimeSettings,
)
from devstack import produce

RECORDS = int(os.environ.get("BENCH_RECORDS", "200000"))
PARTITIONS = 3
BATCH = 1000
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def _payloads(n: int) -> list[tuple[bytes | None, bytes | None]]:
    pad = "x" * 900
    return [
        (
            str(i).encode(),
            orjson.dumps(
                {
                    "id": i,
                    "op": "c",
                    "ts_ms": 1_700_000_000_000 + i,
                    "after": {"name": f"product {i}", "pad": pad},
                }
            ),
        )
        for i in range(n)
    ]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return (samples[0] if samples else 0.0, samples[0] if samples else 0.0)
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49], q[98]


def _settings(bootstrap: str, topic: str, group: str) -> RuntimeSettings:
    return RuntimeSettings(
        kafka_bootstrap_servers=bootstrap,
        kafka_topics=(topic,),
        kafka_group_id=group,
        batch_size=BATCH,
        batch_max_wait_ms=100,
        health_port=0,
        # tansu: a join waits for departed members' session timeout; short keeps the run quick.
        kafka_consumer_extra={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )


def _raw(settings: RuntimeSettings, topic: str) -> tuple[float, list[float]]:
    cfg = settings.consumer_config("bench-raw")
    cfg.pop("partition.assignment.strategy")
    consumer = Consumer(cfg)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    seen = 0
    first = 0.0
    laps: list[float] = []
    try:
        while seen < RECORDS:
            t0 = time.perf_counter()
            msgs = consumer.consume(BATCH, 1.0)
            for m in msgs:
                if m.error() is None:
                    orjson.loads(m.value())
                    seen += 1
            if msgs:
                if not first:
                    first = t0
                laps.append(time.perf_counter() - t0)
        return seen / (time.perf_counter() - first), laps
    finally:
        consumer.close()


class _NoopSink(BaseSink[Any]):
    def __init__(self, done: Callable[[], None]) -> None:
        self.seen = 0
        self.stamps: list[float] = []
        self._done = done

    def write_batch(self, batch: Batch[Any]) -> Offsets | None:
        self.stamps.append(time.perf_counter())
        self.seen += len(batch)
        if self.seen >= RECORDS:
            self._done()
        return None


def _runtime(settings: RuntimeSettings) -> tuple[float, list[float]]:
    holder: dict[str, Runtime[Any]] = {}
    sink = _NoopSink(lambda: holder["rt"].stop())  # noqa: PLW0108 - runtime made below
    runtime: Runtime[Any] = Runtime(
        "bench", settings, _decode, sink, CommitStrategy.COMMIT_AFTER_FLUSH
    )
    holder["rt"] = runtime
    thread = threading.Thread(target=runtime.run)
    start_wait = time.perf_counter()
    thread.start()
    thread.join(300)
    assert sink.seen >= RECORDS, f"only {sink.seen} records in {time.perf_counter() - start_wait}"
    laps = [b - a for a, b in zip(sink.stamps, sink.stamps[1:], strict=False)]
    # From the end of the first batch to the end of the last: excludes the group join.
    first_batch = sink.stamps[0]
    per_batch = sink.seen / max(len(sink.stamps), 1)
    elapsed = sink.stamps[-1] - first_batch
    return (sink.seen - per_batch) / elapsed, laps


def _decode(message: Message) -> Any:
    return orjson.loads(message.value() or b"null")


def test_runtime_throughput_against_raw_consume(
    make_topic: Callable[..., str], kafka_bootstrap: str, kafka_group: str
) -> None:
    topic = make_topic(PARTITIONS)
    t0 = time.perf_counter()
    produce(kafka_bootstrap, topic, _payloads(RECORDS))
    produced_s = time.perf_counter() - t0
    raw_runs: list[tuple[float, list[float]]] = []
    rt_runs: list[tuple[float, list[float]]] = []
    for round_ in range(ROUNDS):  # alternate, so drift on a shared machine hits both alike
        raw_runs.append(_raw(_settings(kafka_bootstrap, topic, kafka_group), topic))
        rt_runs.append(_runtime(_settings(kafka_bootstrap, topic, f"{kafka_group}-{round_}")))
    raw_rate = statistics.median(r for r, _ in raw_runs)
    rt_rate = statistics.median(r for r, _ in rt_runs)
    raw_p50, raw_p99 = _percentiles([lap for _, laps in raw_runs for lap in laps])
    rt_p50, rt_p99 = _percentiles([lap for _, laps in rt_runs for lap in laps])
    print(
        f"\n{RECORDS} records of ~1 KB, {PARTITIONS} partitions, batches of {BATCH} "
        f"(produced in {produced_s:.1f}s), median of {ROUNDS} alternating rounds\n"
        f"  raw consume + orjson.loads           : {raw_rate:>10,.0f} ev/s  "
        f"batch p50 {raw_p50 * 1e3:6.2f} ms  p99 {raw_p99 * 1e3:6.2f} ms  "
        f"runs {[f'{r:,.0f}' for r, _ in raw_runs]}\n"
        f"  runtime (decode, no-op sink, commit) : {rt_rate:>10,.0f} ev/s  "
        f"batch p50 {rt_p50 * 1e3:6.2f} ms  p99 {rt_p99 * 1e3:6.2f} ms  "
        f"runs {[f'{r:,.0f}' for r, _ in rt_runs]}\n"
        f"  runtime / raw: {rt_rate / raw_rate:.0%} (target >= 70%)"
    )
