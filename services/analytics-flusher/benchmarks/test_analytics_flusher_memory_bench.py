"""Peak memory of the analytics flusher through a backlog, next to the pod's memory limit.

The flusher runs as it is deployed (``python -m analytics_flusher``, one process, the default
settings but ``IDLE_FLUSH_SECONDS=2``) over a backlog already in the broker (3+3 partitions),
writing to the AWS emulator, until its group's committed offsets reach the end of both topics
(the last windows are written by the idle flush); its peak resident set (``VmHWM``) is read
from ``/proc`` before it stops. Two backlogs, each read three times: by the runtime with the
flusher's decoder and a sink that keeps nothing (the floor: what consuming and decoding cost),
by the flusher with the default ``MAX_OPEN_BYTES`` (32 MiB), and by the flusher with it out of
the way (1 TiB: the flusher before the bound, its open windows capped only by
``MAX_OPEN_ROWS`` rows per partition):

* ``BENCH_MEMORY_ORDERS`` (default 100,000) orders, each with one line: distinct rows of the
  shop's own size, every one in the same window or two;
* ``BENCH_LARGE_ORDERS`` (default 2,000) orders whose ``status`` (the only text column the
  flusher keeps) is ~100 KB: the shop's CHECK forbids that, a table without it does not.

The limit printed beside each figure is the one ``k8s/base`` gives the container (512 MiB).
Run with ``.venv/bin/pytest services/analytics-flusher/benchmarks -m benchmark -s -k memory``.
Prints figures; asserts only that each run finished.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cdc_events.testing import make_change
from confluent_kafka import Consumer, TopicPartition
from devstack import ManagedProcess, produce

# ``python -m analytics_flusher`` with a sink that keeps nothing (``ForwardingSink(None)``).
FLOOR = """
import sys
from analytics_flusher import Decoder, FlusherSettings
from consumer_runtime import CommitStrategy, run_service
from consumer_runtime.testing import ForwardingSink
sys.exit(run_service("analytics-flusher", FlusherSettings, Decoder(),
                     lambda settings: ForwardingSink(None),
                     strategy=CommitStrategy.COMMIT_AFTER_FLUSH))
"""
FLUSHER = ("-m", "analytics_flusher")

MANY = int(os.environ.get("BENCH_MEMORY_ORDERS", "100000"))
LARGE = int(os.environ.get("BENCH_LARGE_ORDERS", "2000"))
PARTITIONS = 3
POD_LIMIT_MIB = 512  # k8s/base/analytics-flusher/deployment.yaml: resources.limits.memory
_WORDS = ("pending", "shipped", "express", "gift-wrapped", "fragile", "backordered", "café")

Pairs = list[tuple[bytes | None, bytes | None]]


def _backlog(n: int, status_bytes: int, seed: int) -> tuple[Pairs, Pairs]:
    """``n`` new orders (a ``status`` of ``status_bytes`` if > 0) and a line of each, one
    millisecond of source time apart, an hour ago."""
    rng = random.Random(seed)
    t0 = int(datetime.now(UTC).timestamp() * 1000) - 3_600_000
    text = " ".join(rng.choice(_WORDS) for _ in range(status_bytes // 6 + 1))
    orders, items = [], []
    for i in range(n):
        ts = t0 + i
        start = rng.randint(0, 50)
        row = {
            "id": i + 1,
            "customer_id": rng.randint(1, 5_000),
            "status": text[start : start + status_bytes] if status_bytes else "pending",
            "total": Decimal(f"{rng.randint(1, 99_999)}.{rng.randint(0, 99):02d}"),
            "created_at": datetime.fromtimestamp(ts / 1000, UTC),
        }
        rec = make_change("c", table="orders", after=row, source_ts_ms=ts, with_schema=True)
        orders.append((rec.key, rec.value))
        line = {
            "id": i + 1,
            "order_id": i + 1,
            "product_id": rng.randint(1, 300),
            "quantity": rng.randint(1, 5),
            "unit_price": Decimal("9.99"),
        }
        rec = make_change("c", table="order_items", after=line, source_ts_ms=ts, with_schema=True)
        items.append((rec.key, rec.value))
    return orders, items


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _run_flusher(
    bootstrap: str,
    topics: list[str],
    records: int,
    aws: dict[str, str],
    bucket: str,
    name: str,
    log_dir: Path,
    extra_env: dict[str, str],
    argv: tuple[str, ...] = FLUSHER,
) -> tuple[float, float, int]:
    """Peak RSS (MiB), events/s and forced flushes by bytes of one flusher process through
    the whole backlog. The rate runs from the start of the process (its start-up and the last
    idle flush included: a backlog in one window is committed only at its end)."""
    group = f"memory-{name}-{time.monotonic_ns()}"
    env = {
        **os.environ,
        **aws,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPICS": ",".join(topics),
        "KAFKA_GROUP_ID": group,
        "KAFKA_CONSUMER_EXTRA": '{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}',
        "S3_BUCKET": bucket,
        "S3_PREFIX": name,
        "IDLE_FLUSH_SECONDS": "2",
        "HEALTH_PORT": "0",
        "LOG_FORMAT": "json",
        **extra_env,
    }
    watcher = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    partitions = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
    proc = ManagedProcess(
        f"flusher-{name}",
        [sys.executable, *argv],
        log_dir / f"{name}.log",
        env=env,
    )
    try:
        proc.start()
        started = time.perf_counter()
        deadline = time.monotonic() + 900
        while True:
            assert proc.running, f"the flusher exited:\n{proc.log_tail()}"
            assert time.monotonic() < deadline, "the flusher did not finish in 900 s"
            committed = watcher.committed(partitions, timeout=10)
            if sum(max(tp.offset, 0) for tp in committed) >= records:
                break
            time.sleep(0.2)
        rate = records / (time.perf_counter() - started)
        peak = _peak_rss_mib(proc.pid)
        forced = proc.log_path.read_text(errors="replace").count("past MAX_OPEN_BYTES")
        return peak, rate, forced
    finally:
        watcher.close()
        proc.stop(timeout=30)


@pytest.mark.benchmark
@pytest.mark.timeout(3600)
def test_flusher_peak_memory_through_a_backlog(
    make_topic: Any, kafka_bootstrap: str, aws_env: dict[str, str], s3_bucket: str, tmp_path: Path
) -> None:
    lines = [f"peak resident memory of one flusher process (pod limit {POD_LIMIT_MIB} MiB)"]
    for label, n, status_bytes in (
        (f"{MANY:,} orders + {MANY:,} lines, shop-sized rows", MANY, 0),
        (f"{LARGE:,} orders with a ~100 KB status + {LARGE:,} lines", LARGE, 100_000),
    ):
        topics = [
            make_topic(PARTITIONS, name=f"mem{time.monotonic_ns()}.public.orders"),
            make_topic(PARTITIONS, name=f"mem{time.monotonic_ns()}.public.order_items"),
        ]
        orders, items = _backlog(n, status_bytes, seed=n)
        produce(kafka_bootstrap, topics[0], orders)
        produce(kafka_bootstrap, topics[1], items)
        del orders, items
        lines.append(f"  {label}:")
        unbounded = {"MAX_OPEN_BYTES": str(1024**4)}
        for run, argv, env in (
            ("floor: runtime + decoder, sink keeps nothing", ("-c", FLOOR), {}),
            ("flusher, MAX_OPEN_BYTES 32 MiB (default)   ", FLUSHER, {}),
            ("flusher, MAX_OPEN_BYTES 1 TiB (unbounded)  ", FLUSHER, unbounded),
        ):
            name = f"{'large' if status_bytes else 'many'}-{len(lines)}"
            peak, rate, forced = _run_flusher(
                kafka_bootstrap, topics, 2 * n, aws_env, s3_bucket, name, tmp_path, env, argv
            )
            lines.append(
                f"    {run}: peak {peak:4.0f} MiB ({peak / POD_LIMIT_MIB:4.0%} of the limit), "
                f"{rate:>6,.0f} events/s, {forced:>2} forced flushes by bytes"
            )
    print("\n" + "\n".join(lines))
