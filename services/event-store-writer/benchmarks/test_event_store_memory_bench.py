"""Peak memory of the event-store writer through a backlog, next to the pod's memory limit.

The writer runs as it is deployed (``python -m event_store_writer``, one process) over a
backlog already in the broker, into a fresh schema, until its stored offsets reach the end;
its peak resident set (``VmHWM``) is read from ``/proc`` before it stops. Stages:

* ``BENCH_MEMORY_RECORDS`` (default 1,000,000) change records of ~1 KB;
* ``BENCH_LARGE_RECORDS`` (default 2,000) changes of ~100 KB rows, with the default
  ``BATCH_MAX_BYTES`` (8 MiB), and again bounded only by count (``BATCH_SIZE`` 500), which is
  what a batch was before it was also cut by bytes.

The limit printed beside each figure is the one ``k8s/base`` gives the container (512 MiB).
Run with ``make bench`` or ``.venv/bin/pytest services/event-store-writer/benchmarks -s -k
memory``. Prints figures; asserts only that each stage finished.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cdc_events.testing import make_change
from devstack import ManagedProcess, produce
from devstack.pytest_plugin import SinkSchema

MANY = int(os.environ.get("BENCH_MEMORY_RECORDS", "1000000"))
LARGE = int(os.environ.get("BENCH_LARGE_RECORDS", "2000"))
PARTITIONS = 3
POD_LIMIT_MIB = 512  # k8s/base/event-store-writer/deployment.yaml: resources.limits.memory
_WORDS = ("durable", "handmade", "stainless", "ceramic", "recycled", "lightweight", "café")


def _records(n: int, description_bytes: int, seed: int) -> list[tuple[bytes | None, bytes | None]]:
    rng = random.Random(seed)
    now_ms = int(datetime.now(UTC).timestamp() * 1000) - 3_600_000
    text = " ".join(rng.choice(_WORDS) for _ in range(description_bytes // 6 + 1))
    out = []
    lsn = 40_000_000
    for i in range(n):
        pid = rng.randint(1, 1_000_000)
        lsn += rng.randint(60, 400)
        start = rng.randint(0, 50)
        row = {
            "id": pid,
            "name": f"Teapot {pid}",
            "description": text[start : start + description_bytes],
            "stock": rng.randint(0, 500),
        }
        rec = make_change("c", after=row, lsn=lsn, tx_id=900 + i, source_ts_ms=now_ms + i, offset=i)
        out.append((rec.key, rec.value))
    return out


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _run_writer(
    kafka_bootstrap: str,
    topic: str,
    records: int,
    sink_schema: SinkSchema,
    name: str,
    log_dir: Any,
    extra_env: dict[str, str],
) -> tuple[float, float]:
    """Peak RSS (MiB) and events/s of one writer process through the whole backlog."""
    schema = f"{sink_schema.schema}_{name}"
    admin = sink_schema.server.connect(sink_schema.database)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPICS": topic,
        "KAFKA_GROUP_ID": f"memory-{name}-{topic}",
        "KAFKA_CONSUMER_EXTRA": '{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}',
        "DATABASE_URL": sink_schema.url.replace(sink_schema.schema, schema),
        "HEALTH_PORT": "0",
        "LOG_FORMAT": "json",
        **extra_env,
    }
    proc = ManagedProcess(
        f"writer-{name}",
        [sys.executable, "-m", "event_store_writer"],
        log_dir / f"{name}.log",
        env=env,
    )
    try:
        proc.start()
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 900
        with admin.cursor() as cur:
            while True:
                assert proc.running, f"the writer exited:\n{proc.log_tail()}"
                assert time.monotonic() < deadline, "the writer did not finish in 900 s"
                try:
                    cur.execute(
                        f"SELECT coalesce(sum(next_offset), 0) FROM {schema}.consumer_offsets "
                        "WHERE next_offset > 0"
                    )
                    done = int(cur.fetchone()[0] or 0)
                except Exception:  # the schema is being migrated by the writer
                    done = 0
                now = time.perf_counter()
                if done and first is None:
                    first = (now, done)
                if done >= records:
                    break
                time.sleep(0.05)
        peak = _peak_rss_mib(proc.pid)
        assert first is not None
        rate = (records - first[1]) / max(now - first[0], 1e-9)
        return peak, rate
    finally:
        proc.stop(timeout=30)
        with admin.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()


@pytest.mark.benchmark
def test_event_store_peak_memory_through_a_backlog(
    make_topic: Any, kafka_bootstrap: str, sink_schema: SinkSchema, tmp_path: Path
) -> None:
    lines = [f"peak resident memory of one writer process (pod limit {POD_LIMIT_MIB} MiB)"]
    many = make_topic(PARTITIONS)
    produce(kafka_bootstrap, many, _records(MANY, 250, seed=1))
    peak, rate = _run_writer(kafka_bootstrap, many, MANY, sink_schema, "many", tmp_path, {})
    lines.append(
        f"  {MANY:>9,} records of ~1 KB          : peak {peak:6.0f} MiB "
        f"({peak / POD_LIMIT_MIB:.0%} of the limit), {rate:>8,.0f} events/s"
    )
    large = make_topic(PARTITIONS)
    produce(kafka_bootstrap, large, _records(LARGE, 100_000, seed=2))
    for label, env in (
        ("BATCH_MAX_BYTES 8 MiB (default)", {}),
        ("by count only (BATCH_SIZE 500)  ", {"BATCH_MAX_BYTES": str(1024**3)}),
    ):
        name = "large_bytes" if not env else "large_count"
        peak, rate = _run_writer(kafka_bootstrap, large, LARGE, sink_schema, name, tmp_path, env)
        lines.append(
            f"  {LARGE:>9,} rows of ~100 KB, {label}: peak {peak:6.0f} MiB "
            f"({peak / POD_LIMIT_MIB:.0%} of the limit), {rate:>8,.0f} events/s"
        )
    print("\n" + "\n".join(lines))
