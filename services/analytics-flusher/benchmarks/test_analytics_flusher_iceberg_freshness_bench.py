"""Freshness of the Iceberg changes tables at a steady rate: from the source's commit time
(``source.ts_ms``, stamped when each change is produced) to the end of the commit that made
it queryable, per row, with the service's sink (``build_sink``: ``IcebergSink``) at its
default commit interval, while changes are produced at ``BENCH_RATE`` a second (default 1,000:
500 order changes and 500 order lines) for ``BENCH_SECONDS`` (default 60) to the embedded
broker, and the catalog in the embedded PostgreSQL with its warehouse on the AWS emulator.

Beside it, in the same run: the consume-and-parse rate of the same records (the raw limit of
one process), so the steady rate reads as a share of what the process can take at all.

Figures are printed, not asserted, but for the one check that makes them worth reading: every
change produced is in its table once. Run:
``.venv/bin/pytest services/analytics-flusher/benchmarks -m benchmark -s -k freshness``
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow.compute as pc  # type: ignore[import-untyped]
import pytest
from analytics_flusher import Decoder, IcebergSink, build_sink
from cdc_events.testing import make_change
from confluent_kafka import Producer
from consumer_runtime import CommitStrategy, Runtime
from consumer_runtime.testing import run_until
from devstack.pytest_plugin import SinkSchema
from prometheus_client import CollectorRegistry

from ._common import TimedSink, bench_settings, quantile, run_timed

RATE = int(os.environ.get("BENCH_RATE", "1000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
TARGET_P99_S = 60.0  # from source commit to queryable, at 1,000 changes/s


def _change(i: int, ts_ms: int) -> tuple[str, bytes, bytes]:
    """The ``i``-th change: even ones an order, odd ones its line, stamped ``ts_ms``."""
    n = i // 2 + 1
    if i % 2 == 0:
        row = {
            "id": n,
            "customer_id": n % 500,
            "status": "pending",
            "total": Decimal("12.50"),
            "created_at": datetime.fromtimestamp(ts_ms / 1000, UTC),
        }
        rec = make_change("c", table="orders", after=row, source_ts_ms=ts_ms, with_schema=True)
        return "orders", rec.key or b"", rec.value or b""
    line: dict[str, Any] = {"id": n, "order_id": n, "product_id": n % 300, "quantity": 1}
    line["unit_price"] = Decimal("9.99")
    rec = make_change("c", table="order_items", after=line, source_ts_ms=ts_ms, with_schema=True)
    return "order_items", rec.key or b"", rec.value or b""


class SteadyProducer(threading.Thread):
    """``RATE`` changes a second for ``SECONDS``, each stamped with its produce time."""

    def __init__(self, bootstrap: str, topics: dict[str, str]) -> None:
        super().__init__(name="steady-producer", daemon=True)
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.topics = topics
        self.produced = {"orders": 0, "order_items": 0}
        self.finished = threading.Event()

    def run(self) -> None:
        total = int(RATE * SECONDS)
        start = time.monotonic()
        for i in range(total):
            due = start + i / RATE
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            table, key, value = _change(i, int(time.time() * 1000))
            self.producer.produce(self.topics[table], key=key, value=value)
            self.produced[table] += 1
            if i % 200 == 0:
                self.producer.poll(0)
        self.producer.flush(30)
        self.finished.set()


class Freshness:
    """Per row, the commit's end (wall clock) minus its ``event_time`` (``source.ts_ms``):
    ``_commit_table`` wrapped on the writer, which reads the committed chunks' own column."""

    def __init__(self, sink: IcebergSink) -> None:
        self.seconds: list[float] = []
        self.commit_s: list[float] = []
        writer = sink.changes
        commit_table = writer._commit_table

        def timed(table: str, entries: Any) -> int:
            started = time.perf_counter()
            written = commit_table(table, entries)
            self.commit_s.append(time.perf_counter() - started)
            now_us = int(time.time() * 1_000_000)
            for _tp, held, _end in entries:
                for rows, _extras in held.chunks:
                    micros = pc.cast(rows.column("event_time"), "int64")
                    ages = pc.divide(pc.subtract(now_us, micros), 1_000_000.0)
                    self.seconds.extend(ages.to_pylist())
            return written

        writer._commit_table = timed  # type: ignore[method-assign]


@pytest.mark.timeout(900)
def test_flusher_iceberg_freshness_at_a_steady_rate(
    kafka_bootstrap: str,
    make_topic: Any,
    aws_env: dict[str, str],
    s3_bucket: str,
    sink_schema: SinkSchema,
) -> None:
    topics = {
        "orders": make_topic(3, name=f"fresh{time.monotonic_ns()}.public.orders"),
        "order_items": make_topic(3, name=f"fresh{time.monotonic_ns()}.public.order_items"),
    }
    names = list(topics.values())
    settings = bench_settings(
        kafka_bootstrap,
        names,
        f"fresh-{time.monotonic_ns()}",
        s3_bucket=s3_bucket,
        lake_catalog_uri=sink_schema.url,
        lake_warehouse=f"s3://{s3_bucket}/warehouse",
        lake_namespace="bench_freshness",
    )
    sink = build_sink(settings)
    assert isinstance(sink, IcebergSink)
    freshness = Freshness(sink)
    total = int(RATE * SECONDS)
    counted = TimedSink(sink, total)
    runtime: Runtime[Any] = Runtime(
        "analytics-flusher",
        settings,
        Decoder(),
        counted,
        CommitStrategy.COMMIT_AFTER_FLUSH,
        registry=CollectorRegistry(),
    )
    producer = SteadyProducer(kafka_bootstrap, topics)
    producer.start()
    assert run_until(runtime, counted.done, SECONDS + 300), f"{counted.seen} of {total}"
    producer.join(30)
    parse_rate = total / run_timed(kafka_bootstrap, names, TimedSink(None, total))

    held = {}
    for name, table in (("orders", "orders_changes"), ("order_items", "order_items_changes")):
        rows = sink.changes.committer.load(table).scan().to_arrow()
        places = zip(
            rows.column("kafka_partition").to_pylist(),
            rows.column("kafka_offset").to_pylist(),
            strict=True,
        )
        held[name] = (rows.num_rows, len(set(places)))  # rows, distinct (partition, offset)
    p50, p99 = quantile(freshness.seconds, 0.5), quantile(freshness.seconds, 0.99)
    print()
    print(
        f"steady rate {RATE:,} changes/s for {SECONDS:g} s ({total:,} changes), commit interval "
        f"{settings.lake_commit_interval_seconds:g} s, 3+3 partitions"
    )
    print(f"consume + parse of the same records (raw limit): {parse_rate:,.0f} changes/s "
          f"(the steady rate is {RATE / parse_rate:.0%} of it)")  # fmt: skip
    print(
        f"source commit -> queryable, per row: p50 {p50:.2f} s, p99 {p99:.2f} s, "
        f"max {max(freshness.seconds):.2f} s (target p99 <= {TARGET_P99_S:g} s: "
        f"{'met' if p99 <= TARGET_P99_S else 'missed'})"
    )
    print(
        f"commits: {len(freshness.commit_s)}, p50 {quantile(freshness.commit_s, 0.5):.3f} s, "
        f"p99 {quantile(freshness.commit_s, 0.99):.3f} s"
    )
    sink.close()
    assert held == {name: (count, count) for name, count in producer.produced.items()}, held
