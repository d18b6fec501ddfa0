"""The S3 side of the flusher: the runtime's ``Sink`` over per-partition event-time windows.

The only module that talks to storage (boto3 through ``sink_kit.aws``) and to the optional
analytics API. ``write_batch`` folds records into ``domain.PartitionWindows``; parts the
watermark or the memory caps close are turned into report tables (``_reports``) and handed to
a pool of upload threads (Parquet encoding + ``PutObject``), and the batch returns without
waiting for them: the next records are folded while the objects are written. Every call
reports "durable up to" offsets: per partition, the first offset of its oldest part not yet
written in full (or everything handed over when none is open or pending). The runtime commits
only that (``commit-after-flush``). A part is retired (summary POSTed, logged) once all its
objects are written, in partition order; a failed upload is raised on the next call as the
``RetryableError`` it was, and its object is sent again then. At most ``max_inflight`` objects
are queued: a faster consumer than the store waits there (backpressure, bounded memory).
Revoke and shutdown wait for everything. On the runtime's wall-clock turn
(``tick``, about once a second, records or not) the windows of partitions quiet for
``IDLE_FLUSH_SECONDS`` are written and their offsets reported, so a stream that stops is
written out and committed without waiting for another record. (A background thread can do the
same for the sink used outside the runtime: ``idle_thread=True``.)

Event times are bounded by the processing clock (``wall_clock``, read once per batch): a change
more than ``max_clock_skew_ms`` ahead of it moves its partition's watermark no further than
now + the skew (``domain.PartitionWindows.add``) and is counted in
``lake_clock_skewed_records_total``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any, Protocol

import structlog
from consumer_runtime import BaseSink, Batch, Offsets, RetryableError, TopicPartition
from sink_kit.aws import aws_errors, ensure_bucket, make_client, retry_at_start

from analytics_flusher._http import HttpPoster
from analytics_flusher._metrics import LakeMetrics
from analytics_flusher._parquet import encode_jsonl, encode_parquet
from analytics_flusher._reports import ReportTable, build_reports, window_summary
from analytics_flusher.domain import Change, Part, PartitionWindows, WindowConfig
from analytics_flusher.errors import HttpSinkUnavailable
from analytics_flusher.settings import FlusherSettings

_log = structlog.get_logger("analytics_flusher")

# How often the background thread looks for quiet partitions: a tenth of a typical idle
# timeout, cheap (a dictionary scan under the lock).
_IDLE_CHECK_S = 1.0


class ObjectStore(Protocol):
    """Where objects go: S3 in production, a dictionary in unit tests."""

    def put(self, key: str, body: bytes, content_type: str) -> None: ...

    def healthy(self) -> bool: ...


class S3Store:
    """``PutObject`` into one bucket; transient failures raise ``RetryableError``.

    ``healthy()`` answers from the outcome of the last request instead of making one: a probe
    must stay cheap and must not hang on an endpoint that accepts connections but not requests.
    """

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self._ok = True

    def put(self, key: str, body: bytes, content_type: str) -> None:
        try:
            with aws_errors(f"put s3://{self.bucket}/{key}"):
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType=content_type
                )
        except RetryableError:
            self._ok = False
            raise
        self._ok = True

    def healthy(self) -> bool:
        return self._ok


class _Job:
    """The uploads of one closed part: its report tables and one future per object."""

    __slots__ = ("futures", "tables")

    def __init__(self, tables: list[ReportTable]) -> None:
        self.tables = tables
        self.futures: dict[str, Future[None]] = {}

    def written(self) -> bool:
        return all(
            (f := self.futures.get(t.key)) is not None and f.done() and f.exception() is None
            for t in self.tables
        )

    def failure(self) -> BaseException | None:
        for f in self.futures.values():
            if f.done() and (exc := f.exception()) is not None:
                return exc
        return None


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
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        metrics: LakeMetrics | None = None,
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
        self._lock = threading.RLock()
        self._windows: dict[TopicPartition, PartitionWindows] = {}
        self._pending: dict[TopicPartition, list[Part]] = {}
        self._jobs: dict[int, _Job] = {}  # id(part) -> its uploads, for every pending part
        self._max_inflight = max_inflight or 8 * upload_concurrency
        self._last_seen: dict[TopicPartition, float] = {}
        self.stats = {
            "parts": 0,
            "objects": 0,
            "bytes": 0,
            "idle_flushes": 0,
            "late_events": 0,
            "clock_skewed": 0,
        }
        self._stats_lock = threading.Lock()
        self._pool = (
            ThreadPoolExecutor(upload_concurrency, thread_name_prefix="s3-put")
            if upload_concurrency > 1
            else None
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if idle_thread:
            self._thread = threading.Thread(target=self._idle_loop, name="idle-flush", daemon=True)
            self._thread.start()

    @classmethod
    def from_settings(cls, settings: FlusherSettings) -> LakeSink:
        client = make_client("s3", settings.aws_region, settings.aws_endpoint_url)
        created = retry_at_start(
            lambda: ensure_bucket(client, settings.s3_bucket, settings.aws_region),
            f"checking bucket {settings.s3_bucket}",
        )
        if created:
            _log.info("created bucket", bucket=settings.s3_bucket)
        http = None
        if settings.http_sink_url is not None:
            http = HttpPoster(
                str(settings.http_sink_url),
                timeout_s=settings.http_sink_timeout_s,
                max_attempts=settings.http_sink_max_attempts,
            )
        return cls(
            S3Store(client, settings.s3_bucket),
            settings.window_config(),
            prefix=settings.s3_prefix,
            top_n=settings.top_n,
            jsonl_copy=settings.jsonl_copy,
            http=http,
            idle_flush_s=settings.idle_flush_seconds,
            upload_concurrency=settings.upload_concurrency,
            max_inflight=settings.upload_max_inflight,
        )

    # -- the runtime's hooks --------------------------------------------------------------------

    def write_batch(self, batch: Batch[Change]) -> Offsets | None:
        with self._lock:
            now = self._clock()
            now_ms = int(self._wall_clock() * 1000)
            for tp, records in batch.records.items():
                state = self._state(tp)
                closed = self._pending.setdefault(tp, [])
                skewed = 0
                for record in records:
                    if state.add(record, closed, now_ms):
                        skewed += 1
                self._last_seen[tp] = now
                if skewed:
                    self._count_skewed(tp, skewed, now_ms)
            for tp, next_offset in batch.next_offsets.items():
                self._state(tp).advance(next_offset)
            self._write_pending(list(self._pending), wait=False)
            return self._durable(list(self._windows))

    def on_assign(self, partitions: Sequence[TopicPartition]) -> None:
        with self._lock:
            for tp in partitions:
                self._state(tp)

    def on_revoke(self, partitions: Sequence[TopicPartition]) -> Offsets | None:
        with self._lock:
            try:
                for tp in partitions:
                    if tp in self._windows:
                        self._windows[tp].close_all(self._pending.setdefault(tp, []))
                self._write_pending([tp for tp in partitions if tp in self._pending], wait=True)
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
            return self._durable(list(self._windows))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def healthy(self) -> bool:
        return self.store.healthy()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until no upload is queued or running (finished or failed); the parts are
        retired on the next call (``tick``, a batch). For tests and tools; True if settled."""
        with self._lock:
            running = [f for job in self._jobs.values() for f in job.futures.values()]
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
            return self._durable(list(self._windows)) or None

    def _idle_loop(self) -> None:
        while not self._stop.wait(min(_IDLE_CHECK_S, self.idle_flush_s)):
            try:
                self.flush_idle()
            except Exception:  # the thread must survive anything; the main loop sees errors
                _log.exception("idle flush failed unexpectedly")

    # -- internals ------------------------------------------------------------------------------

    def _count_skewed(self, tp: TopicPartition, n: int, now_ms: int) -> None:
        self.metrics.count_skewed(tp.topic, n)
        self.stats["clock_skewed"] += n
        _log.warning(
            "changes ahead of the clock; the watermark stops at the bound",
            topic=tp.topic,
            partition=tp.partition,
            count=n,
            bound_ms=now_ms + self.config.max_clock_skew_ms,
        )

    def _state(self, tp: TopicPartition) -> PartitionWindows:
        state = self._windows.get(tp)
        if state is None:
            state = self._windows[tp] = PartitionWindows(tp.topic, tp.partition, self.config)
        return state

    def _drop(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            self._windows.pop(tp, None)
            self._last_seen.pop(tp, None)
            for part in self._pending.pop(tp, []):
                # Uploads still running finish in the background; their keys and bytes are
                # what the partition's next owner writes too.
                self._jobs.pop(id(part), None)

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
        so parts completed meanwhile are accounted first.
        """
        retried: list[Future[None]] = []
        for tp in partitions:
            for part in self._pending.get(tp, ()):
                job = self._jobs.get(id(part))
                if job is None:
                    job = self._jobs[id(part)] = _Job(build_reports(part, self.prefix, self.top_n))
                for table in job.tables:
                    future = job.futures.get(table.key)
                    if future is None:
                        job.futures[table.key] = self._submit(table)
                    elif future.done() and future.exception() is not None:
                        job.futures[table.key] = again = self._submit(table)
                        retried.append(again)
        if wait:
            for tp in partitions:
                for part in self._pending.get(tp, ()):
                    wait_for(self._jobs[id(part)].futures.values())
        else:
            wait_for(retried)
            self._throttle()
        failure: BaseException | None = None
        for tp in partitions:
            pending = self._pending.get(tp)
            while pending:
                job = self._jobs[id(pending[0])]
                if not job.written():
                    failure = failure or job.failure()
                    break
                self._retire(pending[0], job.tables)
                del self._jobs[id(pending.pop(0))]
        if failure is not None:
            raise failure

    def _submit(self, table: ReportTable) -> Future[None]:
        if self._pool is not None:
            return self._pool.submit(self._upload, table)
        future: Future[None] = Future()
        try:
            self._upload(table)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(None)
        return future

    def _throttle(self) -> None:
        """Wait while more than ``max_inflight`` uploads are queued or running."""
        while True:
            running = [
                f for job in self._jobs.values() for f in job.futures.values() if not f.done()
            ]
            if len(running) <= self._max_inflight:
                return
            wait_for(running, return_when=FIRST_COMPLETED)

    def _upload(self, table: ReportTable) -> None:
        body = encode_parquet(table)
        self.store.put(f"{table.key}.parquet", body, "application/vnd.apache.parquet")
        size = len(body)
        if self.jsonl_copy:
            lines = encode_jsonl(table)
            self.store.put(f"{table.key}.jsonl", lines, "application/x-ndjson")
            size += len(lines)
        with self._stats_lock:
            self.stats["objects"] += 2 if self.jsonl_copy else 1
            self.stats["bytes"] += size

    def _retire(self, part: Part, tables: list[ReportTable]) -> None:
        if self.http is not None and tables:
            try:
                self.http.post(tables[0].key, window_summary(part, tables))
            except HttpSinkUnavailable as exc:
                raise RetryableError(str(exc)) from exc
        late = sum(s.count for s in part.late.values())
        self.stats["parts"] += 1
        self.stats["late_events"] += late
        _log.info(
            "window part written",
            topic=part.topic,
            partition=part.partition,
            window_start=part.window_start,
            offsets=f"{part.first_offset}..{part.last_offset}",
            events=part.events,
            rows=len(part.images),
            late_events=late,
            objects=len(tables),
        )


def build_sink(settings: FlusherSettings) -> LakeSink:
    """The runtime's sink factory."""
    return LakeSink.from_settings(settings)
