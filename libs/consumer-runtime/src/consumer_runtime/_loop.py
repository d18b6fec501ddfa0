"""The consumer loop: poll a batch, decode, dead-letter, write to the sink, commit.

Single-threaded: rebalance callbacks run inside ``consume`` on the same thread, so between two
polls nothing is in flight except a batch waiting out a ``RetryableError``. The loop only
orchestrates; each concern has its own part:

- ``_batch``: a poll cut into batches by bytes, and the counts of what became of each record;
- ``_decode.decode_batch``: messages to a batch; any failure of one record dead-letters it;
- ``_delivery.Delivery``: dead letters, then the records to the sink; a batch the store refuses
  for good is split until the refusing records are alone (``_isolate.isolate``), they are
  dead-lettered with the store's reason and the rest is written;
- ``_offsets.OffsetTracker``: what is handed, durable and committed, and the invariant
  **never commit past a record that is not durable**;
- ``_retry.PausedRetry``: a transient failure retried with backoff while every owned partition
  is paused (``_pausing.Pausing``: a partition assigned meanwhile too, and each sought back on
  resume so nothing fetched meanwhile is skipped);
- ``_claims.Claims``: where a sink-managed member's partitions resume, and the partitions that
  wait, paused, while the store cannot say.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

import structlog

from consumer_runtime._batch import by_bytes, outcomes, ranges
from consumer_runtime._claims import Claims
from consumer_runtime._client import ConsumerClient
from consumer_runtime._decode import DecodeBreaker, decode_batch
from consumer_runtime._delivery import Delivery
from consumer_runtime._dlq import DlqProducer
from consumer_runtime._errors import PermanentError, RetryableError
from consumer_runtime._health import HealthState
from consumer_runtime._message import Message, TopicPartition
from consumer_runtime._metrics import Metrics
from consumer_runtime._offsets import OffsetTracker
from consumer_runtime._progress import Progress
from consumer_runtime._retry import Backoff, PausedRetry, StopRequested
from consumer_runtime._sink import Batch, CommitStrategy, Decoder, Sink

# ``Backoff`` and ``StopRequested`` live in ``_retry``; still importable from here.
__all__ = ["Backoff", "ConsumerLoop", "StopRequested"]

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")

# Lag is read from the client's cached watermarks; every few seconds is plenty for a gauge.
_LAG_INTERVAL_S = 5.0


class ConsumerLoop(Generic[T]):
    def __init__(
        self,
        *,
        service: str,
        client: ConsumerClient,
        decoder: Decoder[T],
        sink: Sink[T],
        strategy: CommitStrategy,
        dlq: DlqProducer,
        dlq_topic: str,
        batch_size: int,
        batch_max_wait_s: float,
        backoff: Backoff,
        batch_max_bytes: int = 8 * 1024 * 1024,
        decode_failure_limit: int = 100,
        metrics: Metrics,
        health: HealthState,
        commit_interval_s: float = 0.0,
        tick_interval_s: float = 1.0,
    ) -> None:
        self.service = service
        self._client = client
        self._decoder = decoder
        self._sink = sink
        self._strategy = strategy
        self._batch_size = batch_size
        self._max_wait_s = batch_max_wait_s
        self._max_bytes = batch_max_bytes
        self._breaker = DecodeBreaker(decode_failure_limit)
        self.metrics = metrics
        self.health = health
        self._log = structlog.get_logger("consumer_runtime").bind(service=service)
        self._stop = threading.Event()
        self._failed = False
        self._offsets = OffsetTracker()
        self._progress = Progress(
            client=client, offsets=self._offsets, metrics=metrics, health=health, log=self._log
        )
        self._claims = Claims(client, sink, backoff.max_s, self._log)
        self._retry = PausedRetry(
            client=client,
            batch_size=batch_size,
            backoff=backoff,
            offsets=self._offsets,
            health=health,
            metrics=metrics,
            stop=self._stop,
            note=self._claims.note,
            log=self._log,
        )
        self._delivery: Delivery[T] = Delivery(
            service=service,
            sink=sink,
            dlq=dlq,
            dlq_topic=dlq_topic,
            offsets=self._offsets,
            retrying=self._retrying,
            record_durable=self._progress.record_durable,
            log=self._log,
        )
        self._inflight: Batch[T] | None = None
        self._next_lag = 0.0
        self._next_commit = 0.0
        self._commit_interval_s = commit_interval_s
        self._tick_interval_s = tick_interval_s
        self._tick_due: Callable[[], bool] | None = getattr(sink, "tick_due", None)
        self._next_tick = time.monotonic() + tick_interval_s
        health.sink_healthy = sink.healthy

    # -- public surface used by the runtime and the test kit --------------------------------

    @property
    def assignment(self) -> set[TopicPartition]:
        return set(self._offsets.assigned)

    @property
    def positions(self) -> dict[TopicPartition, int]:
        return dict(self._offsets.positions)

    @property
    def committed(self) -> dict[TopicPartition, int]:
        return self._offsets.committed

    def subscribe(self, topics: Sequence[str]) -> None:
        self._client.subscribe(topics, self)
        self.health.subscribed = True

    def request_stop(self) -> None:
        self._stop.set()
        self.health.stopping = True

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Poll until a stop is requested, then flush and commit (the caller closes)."""
        try:
            while not self._stop.is_set():
                try:
                    self.poll_once()
                except StopRequested:
                    break
            self.finish()
        except BaseException:
            self._failed = True
            raise

    def poll_once(self) -> int:
        """One batch: returns how many messages it handled."""
        messages = self._client.consume(self._batch_size, self._max_wait_s)
        self.health.tick()
        if self._offsets.unstarted and self._offsets.note_fetched(messages):
            self._next_lag = 0.0  # a partition that just joined shows its backlog at once
        now = time.monotonic()
        if now >= self._next_lag:
            self._next_lag = now + _LAG_INTERVAL_S
            self._progress.report_lag()
        if now >= self._next_tick:
            self._next_tick = now + self._tick_interval_s
            self.tick()
        elif not messages and self._tick_due is not None and self._tick_due():
            self.tick(rate_limited=True)  # a quiet stream: report a finished write now
        if self._claims.unclaimed:
            self._claims.note(messages)
            self._claim_waiting()
        if self._delivery.refused:
            self._guarded(self._isolate_refused, None, messages)
        if not messages:
            return 0
        for chunk in by_bytes(messages, self._max_bytes):
            self._process(chunk)
        return len(messages)

    def _process(self, messages: list[Message]) -> None:
        """One batch: decode, deliver, record what is durable, commit (rate-limited)."""
        started = time.perf_counter()
        try:
            batch, skipped = decode_batch(
                messages,
                self._decoder,
                owned=self._flowing,
                positions=self._offsets.positions,
                breaker=self._breaker,
            )
        except BaseException:
            self._failed = True
            raise
        if not batch.next_offsets:
            return
        self._inflight = batch
        try:
            durable = self._guarded(self._delivery.deliver, batch, messages)
        finally:
            self._inflight = None
        self._progress.handed(batch)
        self._progress.record_durable(batch.next_offsets, durable)
        self._retry.resume_if_paused()
        if started >= self._next_commit:
            # Asynchronous commits are rate-limited: a revoke or a shutdown commits
            # synchronously anyway, so between them a commit per interval bounds redelivery.
            self._next_commit = started + self._commit_interval_s
            self._progress.commit(self._offsets.commit_targets(), asynchronous=True)
        self._account(batch, skipped)
        self.metrics.observe_batch(time.perf_counter() - started)

    def tick(self, *, rate_limited: bool = False) -> None:
        """Give the sink its wall-clock turn (``Sink.tick``) and commit what it made durable
        (``rate_limited``: a turn the sink asked for with ``tick_due``, committed as a batch is).

        A windowed sink closes windows that went quiet here, so a stream that stops still gets
        its last window written and committed, without waiting for the next record; a sink
        that writes in the background retries a failed write here, not only when new records
        arrive. A commit the rate limit deferred goes out here too: otherwise a stream that went
        quiet right after a batch would show that batch as lag until the next record.
        """
        if self._failed:
            return
        tick = getattr(self._sink, "tick", None)
        if tick is not None:
            try:
                durable = tick()
            except RetryableError as exc:
                self._log.warning(
                    "sink tick failed; it is tried again on the next tick", error=str(exc)
                )
                durable = None
            except PermanentError as exc:
                self._delivery.defer(exc)
                durable = None
            if durable:
                self._progress.record_durable(durable, durable)
                if not rate_limited:
                    self._progress.commit(self._offsets.commit_targets(), asynchronous=True)
                    return
        now = time.perf_counter()
        if now >= self._next_commit:
            targets = self._offsets.commit_targets()
            if targets:
                self._next_commit = now + self._commit_interval_s
                self._progress.commit(targets, asynchronous=True)

    def finish(self) -> None:
        """Shutdown: write out whatever the sink holds and commit it, synchronously."""
        if self._failed:
            return
        try:
            durable = self._sink.flush()
        except RetryableError as exc:
            self._log.warning("final flush failed; its records will be re-read", error=str(exc))
            durable = {}
        except PermanentError as exc:
            self._delivery.defer(exc)
            durable = {}
        if self._delivery.refused:
            try:
                self._isolate_refused()
            except (StopRequested, RetryableError) as exc:
                self._log.warning(
                    "refused records not isolated before shutdown; they are read again",
                    error=str(exc),
                )
        self._progress.record_durable(dict(self._offsets.positions), durable)
        self._progress.commit(self._offsets.commit_targets(), asynchronous=False)

    # -- rebalance listener (called by the client inside consume) ---------------------------

    def on_assign(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        self.metrics.count_rebalance("assign")
        self._log.info("partitions assigned", partitions=[str(p) for p in partitions])
        if self._failed:
            self._offsets.assign(partitions, {})
            self._progress.update_assigned()
            return {}
        self._sink.on_assign(partitions)
        stored: dict[TopicPartition, int] = {}
        if self._strategy is CommitStrategy.SINK_MANAGED:
            try:
                stored = dict(self._claims.stored_offsets(partitions))
            except RetryableError as exc:
                self._claims.wait(partitions, exc)
                return {}
        # During a retry pause these are paused as soon as the client has them (the client
        # completes the assignment after this callback): see ``_sleep_polling``.
        self._offsets.assign(partitions, stored)
        self._progress.update_assigned()
        if stored:
            self._log.info(
                "resuming from the sink's stored offsets",
                offsets={str(tp): o for tp, o in stored.items()},
            )
        return stored

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        self.metrics.count_rebalance("revoke")
        self._log.info("partitions revoked", partitions=[str(p) for p in partitions])
        if not self._failed:
            if self._inflight is not None:
                # Mid-retry: these records were not written; the next owner reads them again.
                self._inflight.without(partitions)
            try:
                durable = self._sink.on_revoke(partitions)
            except RetryableError as exc:
                self._log.warning("flush on revoke failed; the next owner re-reads", error=str(exc))
                durable = {}
            except PermanentError as exc:
                # What the store refused is isolated at the next poll for the partitions kept;
                # the revoked ones are not durable, so their next owner reads them again.
                self._delivery.defer(exc)
                durable = {}
            positions = self._offsets.positions
            self._progress.record_durable(
                {tp: positions[tp] for tp in partitions if tp in positions}, durable
            )
            self._progress.commit(self._offsets.commit_targets(partitions), asynchronous=False)
        self._forget(partitions)

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        self.metrics.count_rebalance("lost")
        self._log.warning(
            "partitions lost; committing nothing for them", partitions=[str(p) for p in partitions]
        )
        if self._inflight is not None:
            self._inflight.without(partitions)
        if not self._failed:
            try:
                self._sink.on_lost(partitions)
            except PermanentError as exc:
                self._delivery.defer(exc)
        self._forget(partitions)

    # -- writing -------------------------------------------------------------------------------

    def _guarded(self, fn: Callable[[A], R], batch: A, messages: Sequence[Message]) -> R:
        """Run a write step; an unexpected error marks the loop failed (nothing committed)."""
        try:
            return fn(batch)
        except BaseException as exc:
            if not isinstance(exc, StopRequested | RetryableError):
                self._failed = True
                self._log.exception(
                    "sink failed with an unexpected error; exiting without committing the batch",
                    batches=ranges(batch, messages) if isinstance(batch, Batch) else {},
                )
            raise

    def _isolate_refused(self, _batch: Batch[T] | None = None) -> None:
        self._delivery.isolate_deferred()
        self._retry.resume_if_paused()

    # -- pauses: a retry, partitions waiting to be claimed ----------------------------------------

    def _retrying(self, fn: Callable[[A], R], arg: A) -> R:
        return self._retry.run(fn, arg, sleep=self._sleep_polling)

    def _sleep_polling(self, seconds: float) -> None:
        """Wait out a backoff while polling, so the member stays in its group (looked up at
        each retry: tests stand in for it to act during a pause)."""
        self._retry.sleep_polling(seconds)

    def _claim_waiting(self) -> None:
        """Take on the waiting partitions once the sink says where they resume."""
        claimed = self._claims.claim()
        if claimed is None:
            return
        parts, stored = claimed
        self._offsets.assign(parts, stored)
        self._progress.update_assigned()
        self._claims.resume(parts, stored)

    def _flowing(self, tp: TopicPartition) -> bool:
        """Owned and not paused: what is fetched otherwise is read again later."""
        return tp in self._offsets.assigned and not self._retry.blocks(tp)

    # -- accounting -----------------------------------------------------------------------------

    def _account(self, batch: Batch[T], skipped: Mapping[TopicPartition, int]) -> None:
        for (topic, outcome), n in outcomes(batch, skipped).items():
            self.metrics.count(topic, outcome, n)

    def _forget(self, partitions: Sequence[TopicPartition]) -> None:
        self._progress.forget(partitions)
        self._retry.pausing.forget(partitions)
        self._claims.forget(partitions)
