"""The S3 side of the flusher: the runtime's ``Sink`` over per-partition event-time windows.

It writes to the lake through ``store`` (the bucket opened by ``store.open_lake``, the objects
encoded by ``store._parquet``) and posts to the optional analytics API. ``write_batch`` folds
records into ``domain.PartitionWindows``; parts the watermark or the memory caps close are
turned into report tables (``_reports``) and handed to the background uploads (``_uploads``:
one thread encodes Parquet, a pool PUTs), and the batch returns without waiting for them: the
next records are folded while the objects are written.
Every call reports "durable up to" offsets: per partition, the first offset of its oldest part
not yet written in full (or everything handed over when none is open or pending). The runtime
commits only that (``commit-after-flush``). A part is retired (summary POSTed, logged, the
sweeps it records logged and counted) once all its objects are written, in partition order; a
failed upload is raised on the next call as the ``RetryableError`` it was, and its object is
sent again then. At most ``max_inflight`` objects are queued, and parts still uploading hold at
most about ``max_open_bytes``: a faster consumer than the store waits there (backpressure,
bounded memory). Revoke and shutdown wait for everything. On the runtime's wall-clock turn
(``tick``, about once a second, records or not) the windows of partitions quiet for
``IDLE_FLUSH_SECONDS`` are written and their offsets reported, so a stream that stops is
written out and committed without waiting for another record. (A background thread can do the
same for the sink used outside the runtime: ``idle_thread=True``.)

Event times are bounded by the processing clock (``wall_clock``, read once per batch): a change
more than ``max_clock_skew_ms`` ahead of it does not move its partition's watermark
(``domain.PartitionWindows.add``) and is counted in ``lake_clock_skewed_records_total``.

Memory (README, "Memory"): besides ``WindowConfig``'s per-partition caps, the open windows of
the process hold at most ``max_open_bytes`` (past it, those of the partition holding most are
closed), and parts still uploading as much again (``_uploads.Uploads.throttle``).

Refusals (README, "Refused records"): ``write_batch`` checks every change against the lake's
column types (``_encodable``) before folding any, and refuses the batch (``RejectedError``):
the runtime dead-letters that record. An upload failing for good raises
``UnwritablePartError``: the process stops without committing past the part.

Iceberg (README, "Iceberg tables"): with a catalog configured, every change is also handed to
``changes`` (``store.ChangesWriter``), committed to the changes tables every
``LAKE_COMMIT_INTERVAL_SECONDS`` in the background (and on revoke and shutdown, waited for),
and a partition is durable only up to its first change not yet committed there; ``jobs``
materializes the report tables and maintains the tables while this process leads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from decimal import localcontext

import structlog
from consumer_runtime import BaseSink, Batch, Offsets, RetryableError, TopicPartition

from analytics_flusher._changes import Change
from analytics_flusher._encodable import refuse_unencodable
from analytics_flusher._http import HttpPoster
from analytics_flusher._metrics import Buffered, LakeMetrics
from analytics_flusher._uploads import ObjectStore, Uploads, retire, unwritable
from analytics_flusher.domain import MONEY, Held, Part, PartitionWindows, WindowConfig
from analytics_flusher.settings import DEFAULT_MAX_OPEN_BYTES
from analytics_flusher.store import ChangesWriter, LakeJobs

_log = structlog.get_logger("analytics_flusher")

# How often the background thread looks for quiet partitions: a tenth of a typical idle
# timeout, cheap (a dictionary scan under the lock).
_IDLE_CHECK_S = 1.0


class LakeSink(BaseSink[Change]):
    """Windows per partition, written to the lake when they close."""

    def __init__(
        self,
        store: ObjectStore,
        config: WindowConfig,
        *,
        prefix: str = "reports",
        top_n: int = 100,
        jsonl_copy: bool = False,
        http: HttpPoster | None = None,
        idle_flush_s: float = 60.0,
        idle_thread: bool = False,
        upload_concurrency: int = 8,
        max_inflight: int | None = None,
        max_open_bytes: int = DEFAULT_MAX_OPEN_BYTES,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        metrics: LakeMetrics | None = None,
        changes: ChangesWriter | None = None,
        leader_partition: TopicPartition | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.prefix = prefix.strip("/")
        self.top_n = top_n
        self.jsonl_copy = jsonl_copy
        self.http = http
        self.idle_flush_s = idle_flush_s
        self._clock = clock  # idle time (monotonic)
        self._wall_clock = wall_clock  # the processing clock event times are bounded by
        self.metrics = metrics or LakeMetrics()
        # Served by the runtime on /metrics next to its own (consumer_runtime's Sink docs).
        self.metrics_registry = self.metrics.registry
        # The Iceberg changes tables (None: not configured): every change, committed on an
        # interval, exactly once (``store._iceberg._writer``); the report tables and the
        # tables' maintenance run by ``jobs`` while this process holds ``leader_partition``.
        self.changes = changes
        self.jobs: LakeJobs | None = None
        self.leader_partition = leader_partition
        self._assigned: set[TopicPartition] = set()
        self._lock = threading.RLock()
        self._windows: dict[TopicPartition, PartitionWindows] = {}
        self._pending: dict[TopicPartition, list[Part]] = {}
        self.max_open_bytes = max_open_bytes
        self._held = Held()  # the estimated bytes of every partition's open windows
        self._last_seen: dict[TopicPartition, float] = {}
        self.stats = {
            "parts": 0,
            "objects": 0,
            "bytes": 0,
            "idle_flushes": 0,
            "late_events": 0,
            "clock_skewed": 0,
            "byte_flushes": 0,
        }
        self._uploads = Uploads(
            store,
            prefix=self.prefix,
            top_n=top_n,
            jsonl_copy=jsonl_copy,
            concurrency=upload_concurrency,
            max_inflight=max_inflight or 8 * upload_concurrency,
            max_bytes=max_open_bytes,
            stats=self.stats,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if idle_thread:
            self._thread = threading.Thread(target=self._idle_loop, name="idle-flush", daemon=True)
            self._thread.start()

    # -- the runtime's hooks --------------------------------------------------------------------

    def write_batch(self, batch: Batch[Change]) -> Offsets | None:
        refuse_unencodable(batch)  # before anything is folded: the batch is taken whole or not
        with self._lock, localcontext(MONEY):
            if self.changes is not None:
                self.changes.claim_pending()
                self.changes.refuse_incompatible(batch)
            now = self._clock()
            now_ms = int(self._wall_clock() * 1000)
            held, bound = self._held, self.max_open_bytes
            for tp, records in batch.records.items():
                state = self._state(tp)
                closed = self._pending.setdefault(tp, [])
                skewed = 0
                for record in records:
                    if state.add(record, closed, now_ms):
                        skewed += 1
                    if held.bytes > bound:
                        self._shed()
                self._last_seen[tp] = now
                if skewed:
                    self.metrics.count_skewed(
                        tp.topic,
                        tp.partition,
                        skewed,
                        bound_ms=now_ms + self.config.max_clock_skew_ms,
                    )
                    self.stats["clock_skewed"] += skewed
            for tp, next_offset in batch.next_offsets.items():
                self._state(tp).advance(next_offset)
                if self.changes is not None:
                    self.changes.add(tp, batch.records.get(tp, ()), next_offset)
            if self.changes is not None:
                self.changes.poll()  # a commit due starts in the background
            self._write_pending(list(self._pending), wait=False)
            return self._durable(list(self._windows))

    def on_assign(self, partitions: Sequence[TopicPartition]) -> None:
        with self._lock:
            for tp in partitions:
                self._state(tp)
            self._assigned.update(partitions)
            if self.changes is not None:
                self.changes.assign(partitions)

    def on_revoke(self, partitions: Sequence[TopicPartition]) -> Offsets | None:
        with self._lock:
            try:
                for tp in partitions:
                    if tp in self._windows:
                        self._windows[tp].close_all(self._pending.setdefault(tp, []))
                self._write_pending([tp for tp in partitions if tp in self._pending], wait=True)
                if self.changes is not None:
                    self.changes.commit(partitions)
                return self._durable([tp for tp in partitions if tp in self._windows])
            finally:
                self._drop(partitions)

    def on_lost(self, partitions: Sequence[TopicPartition]) -> None:
        with self._lock:
            self._drop(partitions)

    def flush(self) -> Offsets | None:
        with self._lock:
            for tp, state in self._windows.items():
                state.close_all(self._pending.setdefault(tp, []))
            self._write_pending(list(self._pending), wait=True)
            if self.changes is not None:
                self.changes.commit()
            return self._durable(list(self._windows))

    def leads(self) -> bool:
        """This process holds ``leader_partition``: it runs the lake's scheduled jobs."""
        return self.leader_partition in self._assigned

    def close(self) -> None:
        if self.jobs is not None:
            self.jobs.stop()
        if self.changes is not None:
            self.changes.close()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._uploads.close()

    def healthy(self) -> bool:
        return self.store.healthy()

    def open_bytes(self) -> int:
        """The estimated bytes held by the open windows of every partition (``max_open_bytes``
        bounds it)."""
        return self._held.bytes

    def buffered(self) -> list[Buffered]:
        """The open windows (their count, rows and estimated bytes) and, with the Iceberg
        tables, what waits for their next commit: the ``cdc_sink_*`` gauges."""
        with self._lock:
            states = list(self._windows.values())
            windows = Buffered(
                "parquet_windows",
                sum(s.rows for s in states),
                self._held.bytes,
                sum(len(s.open) for s in states),
            )
        if self.changes is None:
            return [windows]
        rows, size = self.changes.buffered()
        return [windows, Buffered("iceberg", rows, size)]

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until no upload is queued or running (finished or failed); the parts are
        retired on the next call (``tick``, a batch). For tests and tools; True if settled."""
        with self._lock:
            running = self._uploads.running()
        return not wait_for(running, timeout=timeout).not_done

    # -- idle flush -----------------------------------------------------------------------------

    def flush_idle(self) -> int:
        """Close the windows of partitions quiet for ``idle_flush_s``; retry unwritten parts.
        Returns how many partitions were flushed for idleness."""
        with self._lock:
            now = self._clock()
            flushed = 0
            for tp, state in self._windows.items():
                if state.open and now - self._last_seen.get(tp, now) >= self.idle_flush_s:
                    state.close_all(self._pending.setdefault(tp, []))
                    flushed += 1
            self.stats["idle_flushes"] += flushed
            try:
                # A quiet stream has time to wait: its windows are written and retired now,
                # so this tick already commits them. Otherwise only finished uploads retire.
                self._write_pending(list(self._pending), wait=flushed > 0)
            except RetryableError as exc:
                _log.warning("idle flush failed; retrying on the next tick", error=str(exc))
            return flushed

    def tick(self) -> Offsets | None:
        """The runtime's wall-clock turn: close quiet windows, report what is now durable."""
        self.flush_idle()
        with self._lock:
            if self.changes is not None:
                self.changes.claim_pending()
                self.changes.poll()
            return self._durable(list(self._windows)) or None

    def _idle_loop(self) -> None:
        while not self._stop.wait(min(_IDLE_CHECK_S, self.idle_flush_s)):
            try:
                self.flush_idle()
            except Exception:  # the thread must survive anything; the main loop sees errors
                _log.exception("idle flush failed unexpectedly")

    # -- internals ------------------------------------------------------------------------------

    def _state(self, tp: TopicPartition) -> PartitionWindows:
        state = self._windows.get(tp)
        if state is None:
            state = self._windows[tp] = PartitionWindows(
                tp.topic, tp.partition, self.config, held=self._held
            )
        return state

    def _shed(self) -> None:
        """The open windows of the process hold more than ``max_open_bytes``: close those of
        the partition holding the most, as the row and window caps do within a partition."""
        tp, state = max(self._windows.items(), key=lambda item: item[1].held_bytes)
        if state.held_bytes:
            _log.info(
                "open windows past MAX_OPEN_BYTES; writing those of the partition holding most",
                topic=tp.topic,
                partition=tp.partition,
                partition_bytes=state.held_bytes,
                open_bytes=self._held.bytes,
            )
            state.close_all(self._pending.setdefault(tp, []))
            self.stats["byte_flushes"] += 1

    def _drop(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            state = self._windows.pop(tp, None)
            if state is not None:
                state.drop()
            self._last_seen.pop(tp, None)
            for part in self._pending.pop(tp, []):
                self._uploads.forget(part)
        self._assigned.difference_update(partitions)
        if self.changes is not None:
            self.changes.drop(partitions)

    def _durable(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        out: dict[TopicPartition, int] = {}
        for tp in partitions:
            state = self._windows.get(tp)
            if state is None:
                continue
            offset = state.durable()
            pending = self._pending.get(tp)
            if pending:
                first = min(p.first_offset for p in pending)
                offset = first if offset is None else min(offset, first)
            held = None if self.changes is None else self.changes.durable(tp)
            if held is not None:
                offset = held if offset is None else min(offset, held)
            if offset is not None:
                out[tp] = offset
        return out

    def _write_pending(self, partitions: list[TopicPartition], *, wait: bool) -> None:
        """Start the uploads of pending parts (again for failed ones), then retire in order
        the parts whose objects are all written.

        ``wait``: block until every upload of these partitions finished (revoke, shutdown);
        otherwise only for uploads sent again after a failure (a store that is down keeps the
        runtime retrying this batch instead of reading on) and while more than
        ``max_inflight`` objects are queued. The first failure is raised after the retiring,
        so parts completed meanwhile are accounted first: a transient one as it is (the next
        call sends the object again), any other as ``UnwritablePartError`` (never sent again).
        """
        retried: list[Future[None]] = []
        for tp in partitions:
            for part in self._pending.get(tp, ()):
                retried += self._uploads.send(part)
        if wait:
            for tp in partitions:
                for part in self._pending.get(tp, ()):
                    self._uploads.wait(part)
        else:
            wait_for(retried)
            self._uploads.throttle()
        failure: tuple[Part, str, BaseException] | None = None
        for tp in partitions:
            pending = self._pending.get(tp)
            while pending:
                part = pending[0]
                if not self._uploads.written(part):
                    found = self._uploads.failure(part)
                    if found is not None and (
                        failure is None
                        or (
                            isinstance(failure[2], RetryableError)
                            and not isinstance(found[1], RetryableError)
                        )
                    ):
                        failure = (part, *found)  # a final failure before a transient one
                    break
                retire(part, self._uploads.tables(part), self.http, self.metrics, self.stats)
                self._uploads.forget(pending.pop(0))
        if failure is None:
            return
        part, key, exc = failure
        if isinstance(exc, RetryableError):
            raise exc
        raise unwritable(part, key, exc) from exc
