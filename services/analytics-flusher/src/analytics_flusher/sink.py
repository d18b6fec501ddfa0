"""The S3 side of the flusher: the runtime's ``Sink`` over per-partition event-time windows.

The only module that talks to storage (boto3 through ``sink_kit.aws``) and to the optional
analytics API. ``write_batch`` folds records into ``domain.PartitionWindows``; parts the
watermark or the memory caps close are encoded (``_reports`` + ``_parquet``) and uploaded
before the batch returns, and the batch reports "durable up to" offsets: per partition, the
first offset of its oldest part not yet written (or everything handed over when none is open).
The runtime commits only that (``commit-after-flush``). On the runtime's wall-clock turn
(``tick``, about once a second, records or not) the windows of partitions quiet for
``IDLE_FLUSH_SECONDS`` are written and their offsets reported, so a stream that stops is
written out and committed without waiting for another record. (A background thread can do the
same for the sink used outside the runtime: ``idle_thread=True``.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import structlog
from consumer_runtime import BaseSink, Batch, Offsets, RetryableError, TopicPartition
from sink_kit.aws import aws_errors, ensure_bucket, make_client

from analytics_flusher._http import HttpPoster
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.config = config
        self.prefix = prefix.strip("/")
        self.top_n = top_n
        self.jsonl_copy = jsonl_copy
        self.http = http
        self.idle_flush_s = idle_flush_s
        self._clock = clock
        self._lock = threading.RLock()
        self._windows: dict[TopicPartition, PartitionWindows] = {}
        self._pending: dict[TopicPartition, list[Part]] = {}
        self._uploaded: set[str] = set()  # objects of the first pending part already written
        self._last_seen: dict[TopicPartition, float] = {}
        self.stats = {"parts": 0, "objects": 0, "bytes": 0, "idle_flushes": 0, "late_events": 0}
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
        if ensure_bucket(client, settings.s3_bucket, settings.aws_region):
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
        )

    # -- the runtime's hooks --------------------------------------------------------------------

    def write_batch(self, batch: Batch[Change]) -> Offsets | None:
        with self._lock:
            now = self._clock()
            for tp, records in batch.records.items():
                state = self._state(tp)
                closed = self._pending.setdefault(tp, [])
                for record in records:
                    state.add(record, closed)
                self._last_seen[tp] = now
            for tp, next_offset in batch.next_offsets.items():
                self._state(tp).advance(next_offset)
            self._write_pending(list(self._pending))
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
                self._write_pending([tp for tp in partitions if tp in self._pending])
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
            self._write_pending(list(self._pending))
            return self._durable(list(self._windows))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def healthy(self) -> bool:
        return self.store.healthy()

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
                self._write_pending(list(self._pending))
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
                self._uploaded.difference_update(
                    t.key for t in build_reports(part, self.prefix, self.top_n)
                )

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

    def _write_pending(self, partitions: list[TopicPartition]) -> None:
        """Upload every pending part's objects (concurrently), then retire the parts in order.

        A part leaves ``pending`` only when all its objects are written; objects that made it
        before a failure are remembered (``_uploaded``) and not sent again on the retry.
        """
        parts = [p for tp in partitions for p in self._pending.get(tp, [])]
        if not parts:
            return
        tables = {id(p): build_reports(p, self.prefix, self.top_n) for p in parts}
        todo = [t for p in parts for t in tables[id(p)] if t.key not in self._uploaded]
        failure: BaseException | None = None
        if len(todo) > 1 and self._pool is not None:
            futures = [self._pool.submit(self._upload, t) for t in todo]
            for future in futures:
                exc = future.exception()
                if exc is not None and failure is None:
                    failure = exc
        else:
            try:
                for table in todo:
                    self._upload(table)
            except BaseException as exc:
                failure = exc
        if failure is not None:
            raise failure
        for tp in partitions:
            pending = self._pending.get(tp)
            while pending:
                self._retire(pending[0], tables[id(pending[0])])
                pending.pop(0)

    def _upload(self, table: ReportTable) -> None:
        body = encode_parquet(table)
        self.store.put(f"{table.key}.parquet", body, "application/vnd.apache.parquet")
        size = len(body)
        if self.jsonl_copy:
            lines = encode_jsonl(table)
            self.store.put(f"{table.key}.jsonl", lines, "application/x-ndjson")
            size += len(lines)
        with self._stats_lock:
            self._uploaded.add(table.key)
            self.stats["objects"] += 2 if self.jsonl_copy else 1
            self.stats["bytes"] += size

    def _retire(self, part: Part, tables: list[ReportTable]) -> None:
        if self.http is not None and tables:
            try:
                self.http.post(tables[0].key, window_summary(part, tables))
            except HttpSinkUnavailable as exc:
                raise RetryableError(str(exc)) from exc
        self._uploaded.difference_update(t.key for t in tables)
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
