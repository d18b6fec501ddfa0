"""Throughput of the flusher into the Iceberg changes tables, in one run over the same records
on the embedded broker (``BENCH_ORDERS`` order changes, default 100,000, each with one order
line; an order every millisecond of source time, the ``dense`` case of
``test_analytics_flusher_bench.py``; 3+3 partitions, batches of 500):

1. consume + parse: the real runtime loop with the service's decoder and a sink that only
   counts: the raw limit of one process;
2. end to end, the service: the runtime loop with ``build_sink``'s sink, with a catalog and
   the defaults: ``IcebergSink``, the changes tables alone (claims, Arrow buffers, background
   commits, "durable up to" the first uncommitted offset, a commit on the final flush);
3. end to end with the Parquet export (``LAKE_PARQUET_EXPORT=true``): ``LakeSink``, the
   Parquet reports to the AWS emulator's S3 and the same changes tables.

2 and 3 write to a SQL catalog in the embedded PostgreSQL (a schema of the test's own) with
the warehouse in the test's bucket on the AWS emulator, each to its own namespace (the
positions the first run records would make the second skip everything), committing every
``LAKE_COMMIT_INTERVAL_SECONDS`` (the service's default; ``BENCH_COMMIT_INTERVAL_S``
overrides it) or sooner when the writer's buffers are full. Their rate is from the first
batch until the final commit. Per changes table: every commit's time, as the writer itself
runs it on its commit thread (the data files, the manifests, the metadata swap), exact where
the histogram's buckets are too coarse for percentiles; the time the consumer waited on
commits; the commits, snapshots and data files; the
rows at the end, which must equal the changes produced (the one assertion: a run that lost or
doubled rows has no figures worth reading).

Freshness is measured per row from its batch's arrival in the sink's ``write_batch`` to the
end of the commit that made it queryable, not from ``source.ts_ms``: the records are produced
as a backlog before the three runs, so commit time minus source time would be the backlog's
age. It is the sink's share of the freshness (``lake_iceberg_freshness_seconds`` adds the
source's and the broker's).

Figures are printed, not asserted. Run:
``.venv/bin/pytest services/analytics-flusher/benchmarks -m benchmark -s -k iceberg``
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import pytest
from analytics_flusher import FlusherSettings, IcebergSink, build_sink
from analytics_flusher.store import ChangesWriter
from consumer_runtime import Batch, Offsets, TopicPartition
from devstack import produce
from devstack.pytest_plugin import SinkSchema

from ._common import BATCH, N_ORDERS, T0_MS, TimedSink, bench_settings, quantile, records, run_timed

DENSE_STEP_MS = 1  # source time between two orders: the ``dense`` case
COMMIT_INTERVAL_S = float(
    os.environ.get("BENCH_COMMIT_INTERVAL_S")
    or FlusherSettings.model_fields["lake_commit_interval_seconds"].default
)
# The targets, printed beside the figures (not asserted).
E2E_TARGET = 0.75  # end to end, as a share of the same run's consume + parse
P99_COMMIT_TARGET_S = 2.0  # per changes table
# One end-to-end run of 200,000 records takes well under a minute on an idle machine; a busy
# shared one can be several times slower.
RUN_TIMEOUT_S = 900.0


class CommitProbe:
    """Times the commits of one ``ChangesWriter`` (methods wrapped on the instances; the
    writer's code runs as it is):

    - ``commit_s[table]``: each commit of the table (``_commit_table``, on a commit thread:
      building the rows, the data files, the catalog's metadata swap);
    - ``blocked_s``: each ``poll`` / ``commit`` call of the consumer's thread that took longer
      than a millisecond: what the consumer waited (a full buffer with a commit running, a
      revoke, the final flush);
    - ``claim_s``: each claim (a commit of the table's properties, on the consumer's thread);
    - ``fresh_s``: per record, from the arrival of its batch in ``write_batch`` to the end of
      the commit that made it queryable.
    """

    def __init__(self, writer: ChangesWriter) -> None:
        self.writer = writer
        tables = sorted(set(writer.tables.values()))
        self.commit_s: dict[str, list[float]] = {t: [] for t in tables}
        self.blocked_s: list[float] = []
        self.claim_s: list[float] = []
        self.fresh_s: list[float] = []
        self.failed = 0
        self._lock = threading.Lock()
        # per partition: (arrival, last offset, records) of each batch not yet committed
        self._arrivals: dict[TopicPartition, deque[tuple[float, int, int]]] = {}
        commit_table, claim = writer._commit_table, writer.committer.claim

        def timed_commit_table(table: str, entries: Any) -> int:
            started = time.perf_counter()
            try:
                written = commit_table(table, entries)
            except BaseException:
                self.failed += 1
                raise
            ended = time.perf_counter()
            with self._lock:
                self.commit_s[table].append(ended - started)
                for tp, _changes, end in entries:
                    queue = self._arrivals.get(tp, deque())
                    while queue and queue[0][1] < end:
                        arrival, _, count = queue.popleft()
                        self.fresh_s.extend([ended - arrival] * count)
            return written

        def timed_claim(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = claim(*args, **kwargs)
            self.claim_s.append(time.perf_counter() - started)
            return result

        writer._commit_table = timed_commit_table  # type: ignore[method-assign]
        writer.committer.claim = timed_claim  # type: ignore[method-assign]
        writer.poll = self._blocking(writer.poll)  # type: ignore[method-assign]
        writer.commit = self._blocking(writer.commit)  # type: ignore[method-assign]

    def _blocking(self, call: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                waited = time.perf_counter() - started
                if waited > 0.001:
                    self.blocked_s.append(waited)

        return timed

    def arrived(self, batch: Batch[Any], now: float) -> None:
        with self._lock:
            for tp, changes in batch.records.items():
                queue = self._arrivals.setdefault(tp, deque())
                if changes and (not queue or changes[-1].offset > queue[-1][1]):  # not a retry
                    queue.append((now, changes[-1].offset, len(changes)))


class ProbedSink(TimedSink):
    """``TimedSink`` that tells the probe when each batch arrived."""

    def __init__(self, inner: Any, target: int, probe: CommitProbe) -> None:
        super().__init__(inner, target)
        self.probe = probe

    def write_batch(self, batch: Batch[Any]) -> Offsets | None:
        self.probe.arrived(batch, time.perf_counter())
        return super().write_batch(batch)


@dataclass(frozen=True)
class TableFigures:
    snapshots: int
    data_files: int
    rows: int
    distinct: int  # distinct (kafka_partition, kafka_offset): a change written twice counts once


@dataclass(frozen=True)
class Run:
    records: int
    seconds: float  # first batch to final commit
    probe: CommitProbe
    tables: dict[str, TableFigures]

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    def waiting(self) -> float:
        """The share of the run the sink's caller spent waiting on commits."""
        return sum(self.probe.blocked_s) / self.seconds

    def worst_p99(self) -> float:
        return max(quantile(s, 0.99) for s in self.probe.commit_s.values())


def measure(bootstrap: str, topics: list[str], n: int, sink: Any) -> Run:
    """``sink`` (which commits through its ``changes`` writer) in the runtime over the ``n``
    records, then what its changes tables hold."""
    writer = _configured(sink.changes)
    probe = CommitProbe(writer)
    seconds = run_timed(bootstrap, topics, ProbedSink(sink, n, probe), timeout_s=RUN_TIMEOUT_S)
    catalog, namespace = writer.committer.catalog, writer.committer.namespace
    tables = {}
    for name in probe.commit_s:
        table = catalog.load_table((namespace, name))
        current = table.current_snapshot()
        files = current.summary.get("total-data-files") if current and current.summary else None
        where = ["kafka_partition", "kafka_offset"]
        scanned = table.scan(selected_fields=tuple(where)).to_arrow()
        distinct = scanned.group_by(where).aggregate([]).num_rows
        tables[name] = TableFigures(
            len(table.snapshots()), int(files or 0), scanned.num_rows, distinct
        )
    return Run(n, seconds, probe, tables)


def _seconds(samples: list[float]) -> str:
    if not samples:
        return "none"
    q50, q99 = quantile(samples, 0.5), quantile(samples, 0.99)
    return f"p50 {q50:.3f} s, p99 {q99:.3f} s, max {max(samples):.3f} s"


def _print_run(label: str, run: Run, parse_rate: float) -> None:
    probe = run.probe
    share = run.rate / parse_rate
    print(f"{label:<38}{run.rate:>10,.0f} records/s  ({share:.0%} of consume + parse)")
    for name, figures in run.tables.items():
        print(
            f"  {name:<20} commits {len(probe.commit_s[name])}, snapshots {figures.snapshots}, "
            f"data files {figures.data_files}, rows {figures.rows:,} "
            f"({figures.distinct:,} distinct offsets)"
        )
        print(f"  {'':<20} commit (on its thread) {_seconds(probe.commit_s[name])}")
    print(
        f"  consumer waiting on commits (full buffers, revokes, the final flush): "
        f"{_seconds(probe.blocked_s)}; "
        f"calls {len(probe.blocked_s)} ({probe.failed} failed), {sum(probe.blocked_s):.1f} s "
        f"in all: {run.waiting():.0%} of the run"
    )
    print(f"  claims of partitions: {len(probe.claim_s)}, {sum(probe.claim_s):.2f} s in all")
    print(f"  freshness (arrival in write_batch -> committed), per row: {_seconds(probe.fresh_s)}")


def report(n: int, parse_rate: float, runs: dict[str, Run]) -> None:
    print()
    print(
        f"records: {n:,} ({N_ORDERS:,} order changes + {N_ORDERS:,} order lines, an order every "
        f"{DENSE_STEP_MS} ms of source time), 3+3 partitions, batches of {BATCH}, commit "
        f"interval {COMMIT_INTERVAL_S:g} s"
    )
    print(f"{'consume + parse (runtime, no sink)':<38}{parse_rate:>10,.0f} records/s")
    for label, run in runs.items():
        _print_run(label, run, parse_rate)
    print()
    print(f"{'summary':<38}{'records/s':>10}  {'of c+p':>7}  {'commit p99':>10}  "
          f"{'waiting on commits':>18}  {'freshness p50 / p99':>20}")  # fmt: skip
    print(f"{'consume + parse':<38}{parse_rate:>10,.0f}  {'100%':>7}")
    for label, run in runs.items():
        p50, p99 = quantile(run.probe.fresh_s, 0.5), quantile(run.probe.fresh_s, 0.99)
        fresh = f"{p50:.2f} / {p99:.2f} s"
        print(
            f"{label:<38}{run.rate:>10,.0f}  {run.rate / parse_rate:>7.0%}  "
            f"{run.worst_p99():>8.3f} s  {run.waiting():>18.0%}  {fresh:>20}"
        )
    for label, run in runs.items():
        share = "met" if run.rate / parse_rate >= E2E_TARGET else "missed"
        commit = "met" if run.worst_p99() <= P99_COMMIT_TARGET_S else "missed"
        print(
            f"targets, {label}: end to end >= {E2E_TARGET:.0%} of consume + parse: {share}; "
            f"p99 commit <= {P99_COMMIT_TARGET_S:g} s per table: {commit}"
        )


def _configured(writer: ChangesWriter | None) -> ChangesWriter:
    if writer is None:
        raise RuntimeError("the settings name no Iceberg catalog (LAKE_CATALOG_URI)")
    return writer


@pytest.mark.timeout(1800)
def test_flusher_iceberg_throughput(
    kafka_bootstrap: str,
    make_topic: Any,
    aws_env: dict[str, str],
    s3_bucket: str,
    sink_schema: SinkSchema,
) -> None:
    orders_topic = make_topic(3, name=f"bench{time.monotonic_ns()}.public.orders")
    items_topic = make_topic(3, name=f"bench{time.monotonic_ns()}.public.order_items")
    orders, items = records(T0_MS, DENSE_STEP_MS)
    produced = {"orders": produce(kafka_bootstrap, orders_topic, orders)}
    produced["order_items"] = produce(kafka_bootstrap, items_topic, items)
    del orders, items  # ~2.6 KB a record: the broker holds them now
    n = sum(produced.values())
    topics = [orders_topic, items_topic]

    parse_rate = n / run_timed(kafka_bootstrap, topics, TimedSink(None, n))

    lake = functools.partial(
        bench_settings,
        kafka_bootstrap,
        topics,
        "unused",  # the runs' consumer groups are run_timed's
        s3_bucket=s3_bucket,
        lake_catalog_uri=sink_schema.url,
        lake_warehouse=f"s3://{s3_bucket}/warehouse",
        lake_commit_interval_seconds=COMMIT_INTERVAL_S,
    )
    service = build_sink(lake(lake_namespace="bench_service_sink"))
    assert isinstance(service, IcebergSink)  # a catalog and no export: the tables alone
    runs = {"end to end, service (tables)": measure(kafka_bootstrap, topics, n, service)}
    export = build_sink(lake(lake_namespace="bench_with_export", lake_parquet_export=True))
    runs["end to end, + Parquet export"] = measure(kafka_bootstrap, topics, n, export)
    report(n, parse_rate, runs)

    # Every change in its table exactly once: as many rows as changes, none at the same offset.
    expected = {service.changes.tables[topic]: count for topic, count in produced.items()}
    held = {
        (label, name): (t.rows, t.distinct)
        for label, run in runs.items()
        for name, t in run.tables.items()
    }
    assert held == {(label, name): (expected[name],) * 2 for label, name in held}, (
        f"(rows, distinct offsets) in the changes tables {held}, changes produced {expected}"
    )
