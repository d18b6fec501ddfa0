"""Throughput of the event-store writer, end to end from the broker into PostgreSQL, next to
the raw limits measured in the same run on the same records:

* consume + parse with no sink (the runtime with the writer's decoder and a no-op sink);
* a plain COPY of the same rows into a table without indexes (one transaction per batch);
* the writer: COPY into a temporary table, dedupe through ``cdc_event_ids``, append to the
  partitioned ``cdc_events``, offsets in the same transaction;
* the writer scaled out the way it is deployed: ``BENCH_REPLICAS`` (default 2) processes of
  ``python -m event_store_writer`` in one consumer group, sharing the topic's partitions, into
  a fresh schema. One process is bound by its Python thread (parse + encode on one core, with
  PostgreSQL using about half of the other); replicas put the second core to work. Measured
  from the first committed batch to the last, through the offsets the writers store.

Records: ~1 KB schemaless Debezium change events (products with a ~250-byte description)
with varied keys, LSNs, transactions and ops, produced into a fresh 3-partition topic first.
Run with ``make bench`` or ``.venv/bin/pytest services/event-store-writer/benchmarks -s``.
Prints figures; asserts nothing about timing. ``BENCH_RECORDS`` overrides the record count.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from cdc_events.testing import make_change
from consumer_runtime import (
    Batch,
    CommitStrategy,
    InMemoryMessage,
    Offsets,
    Runtime,
)
from consumer_runtime.testing import ForwardingSink, run_until
from devstack import ManagedProcess, produce
from devstack.pytest_plugin import SinkSchema
from event_store_writer import (
    CHANGE_COLUMNS,
    ChangeRow,
    EventDecoder,
    EventStoreSink,
    Settings,
    StoreMetrics,
    StoreRecord,
    upgrade_schema,
)
from prometheus_client import CollectorRegistry
from sink_kit.pgcopy import copy_text_rows as copy_rows
from sink_kit.postgres import make_engine

RECORDS = int(os.environ.get("BENCH_RECORDS", "150000"))
PARTITIONS = 6  # an even split between two (or three) replicas
REPLICAS = int(os.environ.get("BENCH_REPLICAS", "2"))
BATCH = int(os.environ.get("BENCH_BATCH", "2000"))
_WORDS = ("durable", "handmade", "stainless", "ceramic", "recycled", "lightweight", "café")


def _records(n: int) -> list[tuple[bytes | None, bytes | None]]:
    rng = random.Random(7)
    now_ms = int(datetime.now(UTC).timestamp() * 1000) - 3_600_000
    out = []
    lsn = 30_000_000
    for i in range(n):
        pid = rng.randint(1, 50_000)
        lsn += rng.randint(60, 400)
        row = {
            "id": pid,
            "name": f"{rng.choice(_WORDS).title()} Teapot {pid}",
            "description": " ".join(rng.choice(_WORDS) for _ in range(40))[:250],
            "price": Decimal(rng.randint(199, 19999)) / 100,
            "stock": rng.randint(0, 500),
            "updated_at": datetime.fromtimestamp((now_ms + i) / 1000, UTC),
        }
        op = rng.choices("cud", (30, 65, 5))[0]
        rec = make_change(
            op,
            before=row
            if op == "d"
            else ({**row, "stock": row["stock"] + 1} if op == "u" else None),
            after=None if op == "d" else row,
            lsn=lsn,
            tx_id=700 + i // 3,
            source_ts_ms=now_ms + i,
            offset=i,
        )
        out.append((rec.key, rec.value))
    return out


def _checkpoint(sink_schema: SinkSchema) -> None:
    """Flush the dirty pages of the stages before, so that no stage pays for another's writes
    (a checkpoint in the middle of one stage made its figure the run's outlier)."""
    conn = sink_schema.server.connect(sink_schema.database)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CHECKPOINT")
    finally:
        conn.close()


def _pct(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return (samples[0] if samples else 0.0,) * 2  # type: ignore[return-value]
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49], q[98]


class _Timed(ForwardingSink[StoreRecord]):
    """Counts records through ``inner`` (or through nothing) and stops the clock once the
    last of them is durable."""

    def __init__(self, inner: EventStoreSink | None, target: int) -> None:
        super().__init__(inner)
        self.target = target
        self.seen = 0
        self.done = threading.Event()
        self.first = 0.0
        self.last = 0.0

    def write_batch(self, batch: Batch[StoreRecord]) -> Offsets | None:
        if not self.first:
            self.first = time.perf_counter()
        result = super().write_batch(batch)
        self.seen += len(batch)
        if self.seen >= self.target and not self.done.is_set():
            self.flush()  # the write in flight, too
            self.last = time.perf_counter()
            self.done.set()
        return result


def _time_writes(sink: EventStoreSink) -> list[float]:
    """Wrap the sink's store write (one transaction per batch) to record its duration."""
    samples: list[float] = []
    writer = sink._writer
    write = writer.write_prepared

    def timed(preps: Any) -> None:
        t0 = time.perf_counter()
        write(preps)
        samples.append(time.perf_counter() - t0)

    writer.write_prepared = timed  # type: ignore[method-assign]
    return samples


def _run(settings: Settings, sink: _Timed, timeout: float = 300) -> float:
    runtime: Runtime[StoreRecord] = Runtime(
        "event-store-writer",
        settings,
        EventDecoder(),
        sink,
        CommitStrategy.SINK_MANAGED,
        registry=CollectorRegistry(),
    )
    if not run_until(runtime, sink.done, timeout):
        raise TimeoutError(f"only {sink.seen} of {sink.target} records in {timeout:.0f}s")
    # From the first batch handed to the sink to the last one written: the steady state,
    # without the group join before it.
    return sink.seen / (sink.last - sink.first)


def _replicas_rate(
    kafka_bootstrap: str, topic: str, sink_schema: SinkSchema, unique_id: str, log_dir: Any
) -> float:
    """``REPLICAS`` writer processes into a fresh schema; events/s from the first committed
    batch to the last, read from ``consumer_offsets`` (the writers' own offsets, stored in the
    batch's transaction)."""
    schema = f"{sink_schema.schema}_replicas"
    admin = sink_schema.server.connect(sink_schema.database)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    url = sink_schema.url.replace(sink_schema.schema, schema)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPICS": topic,
        "KAFKA_GROUP_ID": f"replicas-{unique_id}",
        "KAFKA_CONSUMER_EXTRA": '{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}',
        "DATABASE_URL": url,
        "BATCH_SIZE": str(BATCH),
        "BATCH_MAX_WAIT_MS": "100",
        "HEALTH_PORT": "0",
        "LOG_FORMAT": "json",
    }
    procs = [
        ManagedProcess(
            f"writer-{i}",
            [sys.executable, "-m", "event_store_writer"],
            log_dir / f"writer-{i}.log",
            env=env,
        )
        for i in range(REPLICAS)
    ]
    try:
        for proc in procs:
            proc.start()
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 300
        with admin.cursor() as cur:
            while True:
                assert all(p.running for p in procs), "a writer exited"
                assert time.monotonic() < deadline, "the replicas did not finish in 300 s"
                try:
                    cur.execute(
                        f"SELECT coalesce(sum(next_offset), 0) FROM {schema}.consumer_offsets"
                    )
                    done = int(cur.fetchone()[0] or 0)
                except Exception:  # the schema is being created by the first writer
                    done = 0
                now = time.perf_counter()
                if done and first is None:
                    first = (now, done)
                if done >= RECORDS:
                    break
                time.sleep(0.02)
        assert first is not None
        return (RECORDS - first[1]) / (now - first[0])
    finally:
        for proc in procs:
            proc.stop(timeout=30)
        with admin.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()


@pytest.mark.benchmark
def test_event_store_throughput(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    sink_schema: SinkSchema,
    unique_id: str,
    tmp_path: Any,
) -> None:
    payloads = _records(RECORDS)
    size = sum(len(v or b"") for _, v in payloads) / len(payloads)
    topic = make_topic(PARTITIONS, name=f"bench-{unique_id}.public.products")
    produce(kafka_bootstrap, topic, payloads)

    def settings(group: str) -> Settings:
        return Settings(
            kafka_bootstrap_servers=kafka_bootstrap,
            kafka_topics=(topic,),
            kafka_group_id=f"{group}-{unique_id}",
            database_url=sink_schema.url,
            batch_size=BATCH,
            batch_max_wait_ms=100,
            health_port=0,
            kafka_consumer_extra={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
        )

    # 1. consume + parse, no sink.
    parse_rate = _run(settings("parse"), _Timed(None, RECORDS))

    # 2. plain COPY of the same rows, one transaction per batch, no index.
    decode = EventDecoder()
    rows: list[ChangeRow] = []
    for i, (key, value) in enumerate(payloads):
        row = decode(InMemoryMessage(topic, 0, i, key, value))
        assert isinstance(row, ChangeRow)
        rows.append(row)
    engine = make_engine(sink_schema.url)
    upgrade_schema(engine)
    with engine.begin() as conn:
        # The same columns as cdc_events, as a plain table without any index.
        conn.exec_driver_sql("CREATE TABLE plain_copy (LIKE cdc_events INCLUDING DEFAULTS)")
    copy_times = []
    _checkpoint(sink_schema)
    started = time.perf_counter()
    for lo in range(0, len(rows), BATCH):
        t0 = time.perf_counter()
        with engine.begin() as conn:
            copy_rows(conn, "plain_copy", CHANGE_COLUMNS, [r.values for r in rows[lo : lo + BATCH]])
        copy_times.append(time.perf_counter() - t0)
    copy_rate = len(rows) / (time.perf_counter() - started)

    # 3. the writer, end to end.
    store = EventStoreSink(engine, f"store-{unique_id}", metrics=StoreMetrics(CollectorRegistry()))
    store.ensure_ahead()
    write_times = _time_writes(store)
    timed = _Timed(store, RECORDS)
    _checkpoint(sink_schema)
    store_rate = _run(settings("store"), timed)
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT count(*) FROM cdc_events").scalar_one()
    engine.dispose()
    assert stored == RECORDS

    # 4. the writer, scaled out to REPLICAS processes.
    _checkpoint(sink_schema)
    replicas_rate = _replicas_rate(kafka_bootstrap, topic, sink_schema, unique_id, tmp_path)

    p50, p99 = _pct(write_times)
    c50, c99 = _pct(copy_times)
    print(
        f"\nevent-store-writer, {RECORDS} records of {size:.0f} bytes, {PARTITIONS} partitions,"
        f" batches of {BATCH}:\n"
        f"  consume + parse, no sink      {parse_rate:>9,.0f} events/s\n"
        f"  plain COPY of the same rows   {copy_rate:>9,.0f} rows/s"
        f"   (per batch p50 {c50 * 1000:.1f} ms, p99 {c99 * 1000:.1f} ms)\n"
        f"  writer, broker -> PostgreSQL  {store_rate:>9,.0f} events/s"
        f"   ({store_rate / copy_rate:.0%} of plain COPY;"
        f" write per batch p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms)\n"
        f"  writer, {REPLICAS} replicas (processes) {replicas_rate:>9,.0f} events/s"
        f"   ({replicas_rate / copy_rate:.0%} of plain COPY)"
    )
