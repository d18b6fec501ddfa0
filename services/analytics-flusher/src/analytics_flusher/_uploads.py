"""The background uploads of closed window parts: each part's report tables encoded (Parquet,
optionally JSON lines) by one thread and PUT by a pool of threads while the consumer folds the
next records.

One encoding thread: the pod has one CPU, so encoding in parallel gains nothing there, and each
thread that encodes keeps an allocator heap (Arrow's mimalloc, Python's) as large as the
largest part it ever encoded: with rows of ~100 KB, eight encoding threads held ~250 MiB more
than one. The PUTs, which wait on S3's latency, stay ``concurrency`` wide.

Used by ``sink`` only, which decides when parts close and retires them in order once all their
objects are written; this module keeps one job per closed part (its tables, built once, and a
future per object) and talks to the store only through the ``ObjectStore`` protocol.

A failed upload is either transient (``RetryableError``: the object is sent again the next time
the part is sent) or final, never sent again: the object could not be encoded (a bug: every
record was checked when ``write_batch`` received it) or the store refused it for good.
``unwritable`` turns a final failure into the ``UnwritablePartError`` the sink raises, which
stops the process without committing past the part: retrying cannot fix it, and dead-lettering
the batch at hand would blame records that have nothing to do with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from decimal import localcontext
from typing import Protocol

import structlog
from consumer_runtime import RetryableError

from analytics_flusher._http import HttpPoster
from analytics_flusher._metrics import LakeMetrics
from analytics_flusher._reports import ReportTable, build_reports, iso_utc, window_summary
from analytics_flusher.domain import MONEY, Part
from analytics_flusher.errors import HttpSinkUnavailable, UnwritablePartError
from analytics_flusher.store import encode_jsonl, encode_parquet

_log = structlog.get_logger("analytics_flusher")


class ObjectStore(Protocol):
    """Where objects go: S3 in production, a dictionary in unit tests."""

    def put(self, key: str, body: bytes, content_type: str) -> None: ...

    def healthy(self) -> bool: ...


class _Job:
    """The uploads of one closed part: its report tables, one future per object, and the
    part's estimated bytes (``Part.held_bytes``)."""

    __slots__ = ("futures", "held_bytes", "tables")

    def __init__(self, tables: list[ReportTable], held_bytes: int) -> None:
        self.tables = tables
        self.held_bytes = held_bytes
        self.futures: dict[str, Future[None]] = {}

    def busy(self) -> bool:
        return any(not f.done() for f in self.futures.values())

    def written(self) -> bool:
        return all(
            (f := self.futures.get(t.key)) is not None and f.done() and f.exception() is None
            for t in self.tables
        )

    def failure(self) -> tuple[str, BaseException] | None:
        """The object key and error of a failed upload, a final one before a transient one."""
        found = None
        for key, f in self.futures.items():
            if f.done() and (exc := f.exception()) is not None:
                if not isinstance(exc, RetryableError):
                    return key, exc
                found = found or (key, exc)
        return found


class Uploads:
    """Jobs by part; ``stats`` (``objects``, ``bytes``) is counted as objects are written.

    ``throttle`` is the backpressure: the consumer waits while more than ``max_inflight``
    objects are queued or running, or while the parts still uploading hold more than
    ``max_bytes`` (estimated, as the open windows are: a part is in memory until written, and
    is copied into Arrow and Parquet buffers while it is encoded).
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        prefix: str,
        top_n: int,
        jsonl_copy: bool,
        concurrency: int,
        max_inflight: int,
        max_bytes: int,
        stats: dict[str, int],
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.top_n = top_n
        self.jsonl_copy = jsonl_copy
        self.max_inflight = max_inflight
        self.max_bytes = max_bytes
        self._stats = stats
        self._stats_lock = threading.Lock()
        self._jobs: dict[int, _Job] = {}  # id(part) -> its uploads, for every part sent
        self._encoder: ThreadPoolExecutor | None = None
        self._pool: ThreadPoolExecutor | None = None
        if concurrency > 1:
            self._encoder = ThreadPoolExecutor(1, thread_name_prefix="encode")
            self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="s3-put")

    def send(self, part: Part) -> list[Future[None]]:
        """Start the part's uploads not started yet, and again those that failed transiently;
        returns the futures of the latter."""
        job = self._jobs.get(id(part))
        if job is None:
            with localcontext(MONEY):  # the summaries' sums, exact
                tables = build_reports(part, self.prefix, self.top_n)
            job = self._jobs[id(part)] = _Job(tables, part.held_bytes)
        retried = []
        for table in job.tables:
            future = job.futures.get(table.key)
            if future is None:
                job.futures[table.key] = self._submit(table)
            elif future.done() and isinstance(future.exception(), RetryableError):
                job.futures[table.key] = again = self._submit(table)
                retried.append(again)
        return retried

    def wait(self, part: Part) -> None:
        wait_for(self._jobs[id(part)].futures.values())

    def written(self, part: Part) -> bool:
        return self._jobs[id(part)].written()

    def failure(self, part: Part) -> tuple[str, BaseException] | None:
        return self._jobs[id(part)].failure()

    def tables(self, part: Part) -> list[ReportTable]:
        return self._jobs[id(part)].tables

    def forget(self, part: Part) -> None:
        """Drop the part's job (retired, or its partition left: uploads still running finish
        in the background; their keys and bytes are what the partition's next owner writes
        too)."""
        self._jobs.pop(id(part), None)

    def running(self) -> list[Future[None]]:
        return [f for job in self._jobs.values() for f in job.futures.values() if not f.done()]

    def throttle(self) -> None:
        """Wait while more than ``max_inflight`` uploads are queued or running, or while the
        parts they belong to hold more than ``max_bytes``."""
        while running := self.running():
            if len(running) <= self.max_inflight and self.busy_bytes() <= self.max_bytes:
                return
            wait_for(running, return_when=FIRST_COMPLETED)

    def busy_bytes(self) -> int:
        """The estimated bytes of the parts with an upload still queued or running."""
        return sum(job.held_bytes for job in self._jobs.values() if job.busy())

    def close(self) -> None:
        if self._encoder is not None and self._pool is not None:
            self._encoder.shutdown(wait=True)  # first: its tasks hand PUTs to the pool
            self._pool.shutdown(wait=True)

    def _submit(self, table: ReportTable) -> Future[None]:
        """One object's upload: encoded on the encoding thread, then PUT on the pool (both
        inline without a pool); the future is done when the object is written or failed."""
        done: Future[None] = Future()
        pool = self._pool
        if self._encoder is None or pool is None:
            _settle(done, lambda: self._upload(table, self._encode(table)))
            return done

        def encode() -> None:
            try:
                bodies = self._encode(table)
            except BaseException as exc:
                done.set_exception(exc)
            else:
                pool.submit(_settle, done, lambda: self._upload(table, bodies))

        self._encoder.submit(encode)
        return done

    def _encode(self, table: ReportTable) -> list[bytes]:
        bodies = [encode_parquet(table)]
        if self.jsonl_copy:
            bodies.append(encode_jsonl(table))
        return bodies

    def _upload(self, table: ReportTable, bodies: list[bytes]) -> None:
        self.store.put(f"{table.key}.parquet", bodies[0], "application/vnd.apache.parquet")
        if self.jsonl_copy:
            self.store.put(f"{table.key}.jsonl", bodies[1], "application/x-ndjson")
        with self._stats_lock:
            self._stats["objects"] += len(bodies)
            self._stats["bytes"] += sum(len(b) for b in bodies)


def _settle(done: Future[None], step: Callable[[], None]) -> None:
    try:
        step()
    except BaseException as exc:
        done.set_exception(exc)
    else:
        done.set_result(None)


def unwritable(part: Part, key: str, exc: BaseException) -> UnwritablePartError:
    """The error a final upload failure is raised as: which part, why, what to do."""
    return UnwritablePartError(
        f"window part {part.topic}[{part.partition}] offsets "
        f"{part.first_offset}..{part.last_offset} (window {iso_utc(part.window_start)}) cannot "
        f"be written: {key}: {type(exc).__name__}: {exc}. It is not retried (retrying cannot "
        f"fix it) and nothing from offset {part.first_offset} on is committed, so no record is "
        "lost: the process stops and reads them again when it restarts. An encoding error is "
        "a bug in the flusher (every record was checked when it was received): fix it and "
        "redeploy. A refusal by the store: check the bucket and the service's permissions."
    )


def retire(
    part: Part,
    tables: list[ReportTable],
    http: HttpPoster | None,
    metrics: LakeMetrics,
    stats: dict[str, int],
) -> None:
    """A part whose objects are all written: its summary POSTed (``http``), its sweeps logged
    and counted, the part logged. An analytics API that did not take the summary is the
    runtime's ``RetryableError`` (the part is retired again on the next call)."""
    if http is not None and tables:
        try:
            http.post(tables[0].key, window_summary(part, tables))
        except HttpSinkUnavailable as exc:
            raise RetryableError(str(exc)) from exc
    metrics.record_sweeps(part)
    late = sum(s.count for s in part.late.values())
    stats["parts"] += 1
    stats["late_events"] += late
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
