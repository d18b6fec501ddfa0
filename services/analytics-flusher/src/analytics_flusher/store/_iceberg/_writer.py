"""The changes tables as the sink writes them: ``ChangesWriter`` buffers each partition's
decoded changes and commits them every ``interval_s`` through the ``ExactlyOnceCommitter``.

- **Claims.** Partitions assigned to this process are claimed (``ExactlyOnceCommitter.claim``)
  before anything of theirs is written; the claim's generation is this writer's generation of
  the partition, and the positions the table records are where its records start to count:
  a record below its partition's position is in the table already (a redelivery after a crash
  between the table commit and the Kafka commit) and is not buffered again. Claims run on the
  next call after the assignment (``claim_pending``), not inside the consumer's rebalance
  callback, so an unreachable catalog is the runtime's ordinary ``RetryableError``.
- **Commits.** ``due`` says when the oldest buffered change has waited ``interval_s`` or the
  buffers hold ``max_rows``; ``commit`` appends each table's buffered rows in one snapshot
  recording the partitions' end offsets (the next offset handed over, skipped records
  included) and generations. A failed commit keeps the buffers (the next call tries again);
  a fenced one (``FencedCommitError``) too: the rebalance that follows drops them.
- **Durable up to.** A partition with buffered changes is durable up to its first buffered
  offset; one without holds nothing back (``durable`` returns None).

Which table a partition belongs to comes from its topic's last dot-separated part (Debezium's
``<prefix>.<schema>.<table>``) through ``tables``; a topic it does not name is claimed when its
first change arrives, by the change's type.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for

import pyarrow as pa  # type: ignore[import-untyped]
import structlog
from consumer_runtime import Batch, RejectedError, RetryableError, TopicPartition
from prometheus_client import CollectorRegistry
from pyiceberg.types import IcebergType

from analytics_flusher._changes import Change, OrderChange
from analytics_flusher.errors import SchemaMismatchError
from analytics_flusher.store._iceberg._buffers import Buffer, Entries, Sealed
from analytics_flusher.store._iceberg._catalog import CatalogConfig, open_catalog
from analytics_flusher.store._iceberg._commit import ExactlyOnceCommitter
from analytics_flusher.store._iceberg._evolve import (
    Extra,
    evolve,
    extra_arrays,
    extra_columns,
    refusal,
)
from analytics_flusher.store._iceberg._metrics import SERVICE as _SERVICE
from analytics_flusher.store._iceberg._metrics import WriterMetrics
from analytics_flusher.store._iceberg._tables import (
    ITEMS_CHANGES,
    ORDERS_CHANGES,
    ensure_changes_tables,
)

__all__ = ["ChangesWriter", "WriterMetrics", "open_changes_writer"]

_log = structlog.get_logger("analytics_flusher")


class ChangesWriter:
    """Buffers per partition, commits per table (see the module docstring)."""

    def __init__(
        self,
        committer: ExactlyOnceCommitter,
        tables: Mapping[str, str],
        *,
        interval_s: float = 15.0,
        max_rows: int = 200_000,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.committer = committer
        self.tables = dict(tables)  # a topic's table name (its last part) -> changes table
        self.interval_s = interval_s
        self.max_rows = max_rows
        self.metrics = WriterMetrics(registry or CollectorRegistry())
        self._clock = clock
        self._wall_clock = wall_clock
        self._buffers: dict[TopicPartition, Buffer] = {}
        self._generations: dict[TopicPartition, int] = {}
        self._unclaimed: set[TopicPartition] = set()
        self._since: float | None = None  # when the oldest buffered change was added
        # Per table, its columns' types: its schema's, and those changes taken will add.
        self._columns: dict[str, dict[str, IcebergType]] = {}
        self._rows = 0
        # Commits run on these threads (one per table), the consumer going on meanwhile; the
        # running one's changes, and the first offset of each partition's part of it.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="iceberg-commit")
        self._inflight: tuple[Sealed, dict[str, Future[int]]] | None = None
        self._sealed_first: dict[TopicPartition, int] = {}

    # -- assignment -----------------------------------------------------------------------------

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Note ``partitions`` as to be claimed (``claim_pending``, on the next call)."""
        self._unclaimed.update(tp for tp in partitions if tp not in self._buffers)

    def holds(self, tp: TopicPartition) -> bool:
        """``tp`` is this writer's (claimed, or assigned and to be claimed). Safe from another
        thread: two membership tests, no iteration over what the consumer's thread changes."""
        return tp in self._buffers or tp in self._unclaimed

    def claim_pending(self) -> None:
        """Claim the partitions assigned since the last call whose table is known by topic."""
        by_table: dict[str, list[TopicPartition]] = {}
        for tp in self._unclaimed:
            table = self.tables.get(tp.topic.rsplit(".", 1)[-1])
            if table is not None:
                by_table.setdefault(table, []).append(tp)
        for table, partitions in sorted(by_table.items()):
            self._claim(table, partitions)

    def _claim(self, table: str, partitions: Sequence[TopicPartition]) -> None:
        generations, recorded = self.committer.claim(table, partitions)
        for tp in partitions:
            self._generations[tp] = generations[tp]
            position = recorded.get(tp)
            self._buffers[tp] = Buffer(table, next_offset=position.offset if position else 0)
            self._unclaimed.discard(tp)

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget ``partitions`` (revoked after a commit, or lost): their buffers go, once a
        running commit finished (its failure is logged: the partitions are given up)."""
        partitions = list(partitions)
        try:
            self._reap(wait=True)
        except Exception as exc:
            _log.warning("a background commit failed; its partitions are given up", error=str(exc))
        for tp in partitions:
            buffer = self._buffers.pop(tp, None)
            if buffer is not None:
                self._rows -= buffer.held.rows
            self._generations.pop(tp, None)
            self._unclaimed.discard(tp)
        if not self._rows:
            self._since = None

    # -- writes ---------------------------------------------------------------------------------

    def add(self, tp: TopicPartition, changes: Sequence[Change], next_offset: int) -> None:
        """Buffer the changes of ``tp`` the table does not record yet (a record below the
        partition's next offset is a redelivery: the runtime retrying a batch, or a replay of
        what a commit already holds), and note that everything below ``next_offset`` was handed
        over."""
        buffer = self._buffers.get(tp)
        if buffer is None:
            if not changes:
                return  # nothing to write; the partition is claimed with its first change
            table = ORDERS_CHANGES if type(changes[0]) is OrderChange else ITEMS_CHANGES
            self._claim(table, [tp])
            buffer = self._buffers[tp]
        start = buffer.next_offset
        fresh = changes
        if changes and changes[0].offset < start:  # a redelivery: drop what is held or recorded
            fresh = [c for c in changes if c.offset >= start]
        if len(fresh) < len(changes):
            self.metrics.skipped.labels(_SERVICE, buffer.table).inc(len(changes) - len(fresh))
        if fresh:
            if not self._rows:
                self._since = self._clock()
            buffer.held.add(buffer.table, tp.partition, fresh)
            self._rows += len(fresh)
        buffer.next_offset = max(buffer.next_offset, next_offset)

    def buffered(self) -> tuple[int, int]:
        """Rows buffered and not yet taken by a commit, and their Arrow bytes (read by the
        metrics scrape on its own thread: copies of the containers, no lock needed)."""
        held = [b.held for b in list(self._buffers.values())]
        return self._rows, sum(t.nbytes for h in held for t, _ in list(h.chunks))

    def due(self) -> bool:
        """The oldest buffered change has waited ``interval_s``, or the buffers are full."""
        if not self._rows or self._since is None:
            return False
        return self._rows >= self.max_rows or self._clock() - self._since >= self.interval_s

    def poll(self) -> None:
        """The consumer's turn (each batch, each tick): a finished background commit is taken
        in (its failure raised here, its changes buffered again), and one is started when
        ``due``. While one runs the consumer goes on; only buffers full (``max_rows``) with a
        commit still running wait for it."""
        self._reap(wait=False)
        if self._inflight is not None and self._rows >= self.max_rows:
            self._reap(wait=True)
        if self._inflight is None and self.due():
            self._start(self._seal(None))

    def commit(self, partitions: Iterable[TopicPartition] | None = None) -> int:
        """Commit now (revoke, shutdown, tests): wait for a running commit, then append what is
        buffered (of ``partitions``, else of all), one snapshot per table; returns the rows
        appended. A failure leaves the changes buffered (the next call commits them)."""
        self._reap(wait=True)
        sealed = self._seal(partitions)
        if not sealed:
            return 0
        self._start(sealed)
        return self._reap(wait=True)

    def close(self) -> None:
        """Wait for a running commit (its failure is logged: nothing is committed past it),
        then stop the commit threads."""
        try:
            self._reap(wait=True)
        except Exception as exc:  # shutting down: the runtime did not commit past these rows
            _log.warning("a background commit failed at shutdown", error=str(exc))
        self._pool.shutdown(wait=True)

    def _seal(self, partitions: Iterable[TopicPartition] | None) -> Sealed:
        """Take the buffered changes (of ``partitions``, else all) out of the buffers, by
        table, with each partition's end offset: what one commit appends."""
        chosen = list(self._buffers) if partitions is None else list(partitions)
        sealed: Sealed = {}
        for tp in sorted(chosen):
            buffer = self._buffers.get(tp)
            if buffer is None or not buffer.held.rows or buffer.held.first is None:
                continue
            self._sealed_first[tp] = buffer.held.first
            held = buffer.held.take()
            sealed.setdefault(buffer.table, []).append((tp, held, buffer.next_offset))
            self._rows -= held.rows
        if not self._rows:
            self._since = None
        return sealed

    def _start(self, sealed: Sealed) -> None:
        futures = {
            table: self._pool.submit(self._commit_table, table, entries)
            for table, entries in sealed.items()
        }
        self._inflight = (sealed, futures)

    def _reap(self, *, wait: bool) -> int:
        """Take in the running commit if it finished (``wait``: once it has); returns the rows
        it appended. A table whose append failed has its changes put back in front of its
        partitions' buffers, and the first failure is raised (a refusal before an outage)."""
        if self._inflight is None:
            return 0
        sealed, futures = self._inflight
        if not wait and not all(f.done() for f in futures.values()):
            return 0
        wait_for(list(futures.values()))
        self._inflight = None
        written, failure = 0, None
        for table, future in futures.items():
            exc = future.exception()
            if exc is None:
                written += future.result()
                continue
            if failure is None or (
                isinstance(failure, RetryableError) and not isinstance(exc, RetryableError)
            ):
                failure = exc
            for tp, held, _end in sealed[table]:
                buffer = self._buffers.get(tp)
                if buffer is not None:  # still this process's: written again on a later turn
                    buffer.held.put_back(held)
                    self._rows += held.rows
            if self._rows and self._since is None:
                self._since = self._clock()
        for entries in sealed.values():
            for tp, _changes, _end in entries:
                self._sealed_first.pop(tp, None)
        if failure is not None:
            raise failure
        return written

    def _commit_table(self, table: str, entries: Entries) -> int:
        """Append one table's sealed changes (on a commit thread)."""
        started = time.perf_counter()
        chunks = [chunk for _tp, held, _end in entries for chunk in held.chunks]
        rows = pa.concat_tables([part for part, _extras in chunks])
        if any(extras for _part, extras in chunks):
            aligned = [
                extra
                for part, extras in chunks
                for extra in (extras if extras is not None else [()] * part.num_rows)
            ]
            rows = self._with_extra_columns(table, rows, aligned)
        ends = {tp: end for tp, _held, end in entries}
        generations = {tp: self._generations[tp] for tp, _held, _end in entries}
        result = self.committer.append(table, rows, ends, generations)
        committed_ms = self._wall_clock() * 1000
        fresh = self.metrics.freshness.labels(_SERVICE, table)
        for _tp, held, _end in entries:  # the oldest change of each partition's part
            if held.oldest_ms is not None:
                fresh.observe(max(0.0, (committed_ms - held.oldest_ms) / 1000))
        elapsed = time.perf_counter() - started
        self.metrics.commit_seconds.labels(_SERVICE, table).observe(elapsed)
        self.metrics.rows.labels(_SERVICE, table).inc(result.written)
        _log.info(
            "changes committed",
            table=table,
            snapshot_id=result.snapshot_id,
            rows=result.written,
            already_recorded=result.already_recorded,
            partitions=len(entries),
            seconds=round(elapsed, 3),
        )
        return result.written

    # -- schema evolution (``_evolve``) ---------------------------------------------------------

    def refuse_incompatible(self, batch: Batch[Change]) -> None:
        """Raise ``RejectedError`` (caused by ``SchemaMismatchError``) if a change of ``batch``
        holds a value its changes table's column cannot take; note the types of the columns
        the batch adds, so a later change holding another type is refused too."""
        for records in batch.records.values():
            for change in records:
                if not change.extra:
                    continue
                table = ORDERS_CHANGES if type(change) is OrderChange else ITEMS_CHANGES
                columns = self._column_types(table)
                reason = refusal(table, columns, change)
                if reason is not None:
                    raise RejectedError(reason) from SchemaMismatchError(reason)
                for name, kind in extra_columns([change.extra]).items():
                    if kind is not None:
                        columns.setdefault(name, kind)

    def _column_types(self, table: str) -> dict[str, IcebergType]:
        columns = self._columns.get(table)
        if columns is None:
            schema = self.committer.load(table).schema()
            columns = self._columns[table] = {f.name: f.field_type for f in schema.fields}
        return columns

    def _with_extra_columns(self, table: str, rows: pa.Table, extras: list[Extra]) -> pa.Table:
        """``rows`` with their extra columns (``extras``, one per row), added to the table
        first if missing."""
        evolved = evolve(self.committer.load(table), extra_columns(extras))
        schema = evolved.schema()
        self._column_types(table).update({f.name: f.field_type for f in schema.fields})
        fields, arrays, nulled = extra_arrays(schema, extras)
        if nulled:
            self.metrics.nulled.labels(_SERVICE, table).inc(nulled)
            _log.warning(
                "values that no longer fit their column written as null", table=table, values=nulled
            )
        for column, array in zip(fields, arrays, strict=True):
            rows = rows.append_column(column, array)
        return rows

    # -- durability -----------------------------------------------------------------------------

    def durable(self, tp: TopicPartition) -> int | None:
        """The first offset of ``tp`` not yet in the table, when changes of it are held
        (buffered, or in a commit still running)."""
        held = self._sealed_first.get(tp)
        buffer = self._buffers.get(tp)
        first = None if buffer is None else buffer.held.first
        if first is not None:
            held = first if held is None else min(held, first)
        return held

    @property
    def buffered_rows(self) -> int:
        return self._rows


def open_changes_writer(
    config: CatalogConfig,
    tables: Mapping[str, str],
    *,
    interval_s: float,
    registry: CollectorRegistry | None = None,
) -> ChangesWriter:
    """The catalog opened, its namespace and changes tables created when missing, and a writer
    over them; ``tables`` maps a source table's name (a topic's last part) to its changes
    table (``ORDERS_CHANGES``, ``ITEMS_CHANGES``)."""
    catalog = open_catalog(config)
    ensure_changes_tables(catalog, config.namespace)
    committer = ExactlyOnceCommitter(catalog, config.namespace)
    return ChangesWriter(committer, tables, interval_s=interval_s, registry=registry)
