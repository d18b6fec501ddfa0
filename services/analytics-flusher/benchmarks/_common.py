"""What the flusher's throughput benchmarks share (``test_analytics_flusher_bench.py``,
``test_analytics_flusher_iceberg_bench.py``): the records, the runtime's settings, a sink
wrapper that times a run from its first batch to its final flush, and percentiles.
Not collected (no ``test_`` prefix); the benchmarks import it relatively.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from analytics_flusher import Decoder, FlusherSettings
from cdc_events.testing import make_change
from consumer_runtime import Batch, CommitStrategy, Offsets, Runtime, Sink
from consumer_runtime.testing import ForwardingSink, run_until
from prometheus_client import CollectorRegistry

N_ORDERS = int(os.environ.get("BENCH_ORDERS", "100000"))
BATCH = 500
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the first order's source time


def records(
    t0: int, step_ms: int = 100
) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """``N_ORDERS`` order changes (a cycle of create, paid, shipped, cancelled per order) and a
    new order line with each, ``step_ms`` of source time apart from ``t0``."""
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


class TimedSink(ForwardingSink[Any]):
    """A sink (or no sink: ``inner=None``, counting only), timed: from the first batch until
    the last record is handed over and everything written (``flush``); per-batch times of
    ``write_batch``."""

    def __init__(self, inner: Sink[Any] | None, target: int) -> None:
        super().__init__(inner)
        self.target = target
        self.seen = 0
        self.first = self.last = 0.0
        self.done = threading.Event()
        self.latencies: list[float] = []

    def write_batch(self, batch: Batch[Any]) -> Offsets | None:
        t0 = time.perf_counter()
        self.first = self.first or t0
        result = super().write_batch(batch)
        self.latencies.append(time.perf_counter() - t0)
        self.seen += sum(len(r) for r in batch.records.values())
        if self.seen >= self.target and not self.done.is_set():
            self.flush()
            self.last = time.perf_counter()
            self.done.set()
        return result


def bench_settings(bootstrap: str, topics: list[str], group: str, **extra: Any) -> FlusherSettings:
    """The flusher's settings for a benchmark run: batches of ``BATCH``, a short session so a
    group join after the previous stage's consumer left is quick."""
    return FlusherSettings(
        kafka_bootstrap_servers=bootstrap,
        kafka_topics=tuple(topics),
        kafka_group_id=group,
        batch_size=BATCH,
        batch_max_wait_ms=100,
        health_port=0,
        kafka_consumer_extra={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
        **extra,
    )


def run_timed(
    bootstrap: str, topics: list[str], sink: TimedSink, *, timeout_s: float = 300.0
) -> float:
    """The runtime with the flusher's decoder and ``sink`` (a fresh consumer group) until
    every record went through; the seconds from its first batch to its final flush."""
    settings = bench_settings(bootstrap, topics, f"bench-{time.monotonic_ns()}")
    runtime: Runtime[Any] = Runtime(
        "analytics-flusher",
        settings,
        Decoder(),
        sink,
        CommitStrategy.COMMIT_AFTER_FLUSH,
        registry=CollectorRegistry(),
    )
    assert run_until(runtime, sink.done, timeout_s), (
        f"only {sink.seen} of {sink.target} records folded"
    )
    return sink.last - sink.first


def percentiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms over {len(samples)} batches"


def quantile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples``, interpolated as ``statistics.quantiles``'s
    inclusive method does; unlike it, defined for a single sample (a run of a few commits)."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
