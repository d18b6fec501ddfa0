"""The consumer loop: poll a batch, decode, dead-letter, write to the sink, commit.

Single-threaded: rebalance callbacks run inside ``consume`` on the same thread, so between two
polls nothing is in flight except a batch waiting out a ``RetryableError``. The loop only
orchestrates; each concern has its own part:

- ``_decode.decode_batch``: messages to a batch; any failure of one record dead-letters it;
- ``_offsets.OffsetTracker``: what is handed, durable and committed, and the invariant
  **never commit past a record that is not durable**;
- ``_pausing.Pausing``: every owned partition paused while a batch is retried (a partition
  assigned meanwhile too), and sought back on resume so nothing fetched meanwhile is skipped;
- ``_isolate.isolate``: a batch the store refuses for good is split until the refusing records
  are alone; they are dead-lettered with the store's reason and the rest is written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

import structlog
import tenacity

from consumer_runtime._client import ConsumerClient
from consumer_runtime._decode import DecodeBreaker, decode_batch
from consumer_runtime._dlq import DlqProducer
from consumer_runtime._errors import (
    CommitFailedError,
    PermanentError,
    RejectedError,
    RetryableError,
)
from consumer_runtime._health import HealthState
from consumer_runtime._isolate import isolate
from consumer_runtime._latency import DurableLatency
from consumer_runtime._message import Message, TopicPartition
from consumer_runtime._metrics import Metrics
from consumer_runtime._offsets import OffsetTracker
from consumer_runtime._pausing import Pausing
from consumer_runtime._sink import (
    Batch,
    CommitStrategy,
    DeadLetter,
    Decoder,
    Offsets,
    Sink,
    source_timestamp_ms,
)

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")

# Longest single wait inside a retry pause: how quickly a shutdown request is noticed.
_PAUSE_POLL_S = 0.5
# Lag is read from the client's cached watermarks; every few seconds is plenty for a gauge.
_LAG_INTERVAL_S = 5.0
# Looking up the sink's stored offsets happens inside the assignment callback, where the loop
# cannot keep polling; two quick attempts ride out a blip. In a longer outage the partitions
# wait, paused, and the lookup is tried again between polls (``_claim_waiting``).
_STORED_OFFSETS_ATTEMPTS = 2


class StopRequested(Exception):
    """Raised inside a retry pause when shutdown was requested: abandon the batch."""


class Backoff:
    """Capped exponential backoff with jitter; ``RetryableError.delay`` takes precedence."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self._exp = tenacity.wait_exponential_jitter(
            multiplier=initial_s, max=max_s, jitter=initial_s
        )
        self.max_s = max_s

    def __call__(self, state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, RetryableError) and exc.delay is not None:
            return min(max(exc.delay, 0.0), self.max_s)
        return float(self._exp(state))


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
        self._dlq = dlq
        self._dlq_topic = dlq_topic
        self._batch_size = batch_size
        self._max_wait_s = batch_max_wait_s
        self._max_bytes = batch_max_bytes
        self._breaker = DecodeBreaker(decode_failure_limit)
        self._backoff = backoff
        self.metrics = metrics
        self.health = health
        self._log = structlog.get_logger("consumer_runtime").bind(service=service)
        self._stop = threading.Event()
        self._failed = False
        self._offsets = OffsetTracker()
        self._pausing = Pausing(client)
        # Partitions assigned while the sink could not say where they resume (its store was
        # down): paused, nothing read from them, until ``stored_offsets`` answers.
        self._waiting = Pausing(client)
        self._unclaimed: set[TopicPartition] = set()
        self._next_claim = 0.0
        self._claim_delay = backoff.max_s / 16
        self._latency = DurableLatency(self.metrics.observe_latency)
        self._inflight: Batch[T] | None = None
        # Batches a sink reported refused outside ``write_batch`` (a revoke, a tick): isolated
        # at the start of the next poll, before anything newer is written.
        self._refused: list[tuple[Batch[T], PermanentError]] = []
        self._next_lag = 0.0
        self._next_commit = 0.0
        self._commit_interval_s = commit_interval_s
        self._tick_interval_s = tick_interval_s
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
        now = time.monotonic()
        if now >= self._next_lag:
            self._next_lag = now + _LAG_INTERVAL_S
            self._report_lag()
        if now >= self._next_tick:
            self._next_tick = now + self._tick_interval_s
            self.tick()
        if self._unclaimed:
            self._note_unclaimed(messages)
            self._claim_waiting()
        if self._refused:
            self._guarded(self._isolate_refused, None, messages)
        if not messages:
            return 0
        for chunk in _by_bytes(messages, self._max_bytes):
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
            durable = self._guarded(self._deliver, batch, messages)
        finally:
            self._inflight = None
        self._offsets.handed(batch.next_offsets)
        for tp, records in batch.records.items():
            # Observed once these records are durable: now, or when the sink reports them.
            ts = source_timestamp_ms(records[-1]) if records else None
            if ts is not None and tp in batch.next_offsets:
                self._latency.handed(tp, batch.next_offsets[tp], ts)
        self._record_durable(batch.next_offsets, durable)
        self._resume_if_paused()
        if started >= self._next_commit:
            # Asynchronous commits are rate-limited: a revoke or a shutdown commits
            # synchronously anyway, so between them a commit per interval bounds redelivery.
            self._next_commit = started + self._commit_interval_s
            self._commit(self._offsets.commit_targets(), asynchronous=True)
        self._account(batch, skipped)
        self.metrics.observe_batch(time.perf_counter() - started)

    def tick(self) -> None:
        """Give the sink its wall-clock turn (``Sink.tick``) and commit what it made durable.

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
                self._defer_refusal(exc)
                durable = None
            if durable:
                self._record_durable(durable, durable)
                self._commit(self._offsets.commit_targets(), asynchronous=True)
                return
        now = time.perf_counter()
        if now >= self._next_commit:
            targets = self._offsets.commit_targets()
            if targets:
                self._next_commit = now + self._commit_interval_s
                self._commit(targets, asynchronous=True)

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
            self._defer_refusal(exc)
            durable = {}
        if self._refused:
            try:
                self._isolate_refused()
            except (StopRequested, RetryableError) as exc:
                self._log.warning(
                    "refused records not isolated before shutdown; they are read again",
                    error=str(exc),
                )
        self._record_durable(dict(self._offsets.positions), durable)
        self._commit(self._offsets.commit_targets(), asynchronous=False)

    # -- rebalance listener (called by the client inside consume) ---------------------------

    def on_assign(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        self.metrics.count_rebalance("assign")
        self._log.info("partitions assigned", partitions=[str(p) for p in partitions])
        if self._failed:
            self._offsets.assign(partitions, {})
            self._update_assigned()
            return {}
        self._sink.on_assign(partitions)
        stored: dict[TopicPartition, int] = {}
        if self._strategy is CommitStrategy.SINK_MANAGED:
            try:
                stored = dict(self._stored_offsets(partitions))
            except RetryableError as exc:
                self._log.warning(
                    "the sink cannot say where these partitions resume; they wait, paused",
                    partitions=[str(p) for p in partitions],
                    error=str(exc),
                )
                self._unclaimed.update(partitions)
                self._next_claim = 0.0
                return {}
        # During a retry pause these are paused as soon as the client has them (the client
        # completes the assignment after this callback): see ``_sleep_polling``.
        self._offsets.assign(partitions, stored)
        self._update_assigned()
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
                self._defer_refusal(exc)
                durable = {}
            positions = self._offsets.positions
            self._record_durable(
                {tp: positions[tp] for tp in partitions if tp in positions}, durable
            )
            self._commit(self._offsets.commit_targets(partitions), asynchronous=False)
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
                self._defer_refusal(exc)
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
                    batches=_ranges(batch, messages) if isinstance(batch, Batch) else {},
                )
            raise

    def _deliver(self, batch: Batch[T]) -> Offsets | None:
        """Dead letters first, then the records; a refusal is isolated, never fatal."""
        if batch.dead_letters:
            self._retrying(self._send_dead_letters, batch.dead_letters)
        while True:
            try:
                return self._retrying(self._write, batch)
            except PermanentError as exc:
                refused = _refused_batch(exc, batch)
                durable = self._isolate(refused, exc)
                if refused is batch:
                    return durable
                # An earlier batch (a sink writing in the background): now write this one.
                self._record_durable(refused.next_offsets, durable)

    def _write(self, batch: Batch[T]) -> Offsets | None:
        if not batch.next_offsets:
            return {}  # every partition of the batch was revoked while it waited
        return self._sink.write_batch(batch)

    def _write_durably(self, batch: Batch[T]) -> Offsets | None:
        """Write ``batch`` and make it durable now (a sink that holds records flushes)."""
        if self._write(batch) is None:
            return None
        return self._sink.flush()

    def _isolate(self, batch: Batch[T], refusal: PermanentError) -> Offsets | None:
        """Write what the store accepts of ``batch``, dead-letter what it refuses."""
        refused, carry = isolate(
            batch,
            refusal,
            lambda sub: self._retrying(self._write_durably, sub),
            lambda tp: tp in self._offsets.assigned,
            lambda letters: self._retrying(self._send_dead_letters, letters),
        )
        # A partition that left during the isolation (revoked or lost while a part's write
        # waited out a failure) is already gone from the batch: its next owner reads it again
        # and dead-letters its refused records again (same position: the same dead letter).
        refused = [(entry, dead) for entry, dead in refused if entry[0] in batch.records]
        letters = [dead for _, dead in refused]
        for tp, i in sorted((entry for entry, _ in refused), key=lambda e: -e[1]):
            del batch.records[tp][i]
            del batch.sources[tp][i]
            if not batch.records[tp]:
                del batch.records[tp]
                del batch.sources[tp]
        batch.dead_letters.extend(letters)
        # The closing write: the batch's full position and the dead letters no written part
        # carried yet, so a sink-managed store resumes past them and may keep them in its table.
        closing: Batch[T] = Batch(
            next_offsets={
                tp: o for tp, o in batch.next_offsets.items() if tp in self._offsets.assigned
            },
            dead_letters=[
                d for d in carry if TopicPartition(d.topic, d.partition) in self._offsets.assigned
            ],
        )
        return self._retrying(self._write_durably, closing)

    def _defer_refusal(self, exc: PermanentError) -> None:
        refused = exc.batch if isinstance(exc, RejectedError) else None
        if not isinstance(refused, Batch):
            # A sink refused something it cannot name: nothing the runtime can isolate.
            raise exc
        self._log.warning(
            "the store refused a batch; isolating it at the next poll", error=str(exc)
        )
        self._refused.append((refused, exc))

    def _isolate_refused(self, _batch: Batch[T] | None = None) -> None:
        while self._refused:
            refused, exc = self._refused[0]
            durable = self._isolate(refused, exc)
            self._refused.pop(0)
            self._record_durable(refused.next_offsets, durable)
        self._resume_if_paused()

    def _send_dead_letters(self, dead_letters: list[DeadLetter]) -> None:
        self._dlq.send(self._dlq_topic, dead_letters, self.service)

    # -- retrying while paused ---------------------------------------------------------------------

    def _retrying(self, fn: Callable[[A], R], arg: A) -> R:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetryableError),
            wait=self._backoff,
            sleep=self._sleep_polling,
            before_sleep=self._before_retry_sleep,
            reraise=True,
        )
        return retrying(fn, arg)

    def _before_retry_sleep(self, state: tenacity.RetryCallState) -> None:
        self.metrics.count_retry()
        self._pausing.pause(self._offsets.assigned)
        self.health.retrying = True
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        self._log.warning(
            "transient failure; partitions paused, retrying",
            error=str(exc),
            attempt=state.attempt_number,
            delay_s=round(delay, 2),
        )

    def _sleep_polling(self, seconds: float) -> None:
        """Wait out a backoff while polling, so the member stays in its group."""
        deadline = time.monotonic() + seconds
        while True:
            if self._stop.is_set():
                raise StopRequested
            left = deadline - time.monotonic()
            if left <= 0:
                return
            messages = self._client.consume(self._batch_size, min(left, _PAUSE_POLL_S))
            self._pausing.note(messages)
            if self._unclaimed:
                self._note_unclaimed(messages)
            # A partition assigned inside that consume is paused now that the client has it.
            self._pausing.pause(self._offsets.assigned)
            self.health.tick()

    def _resume_if_paused(self) -> None:
        if not self._pausing.active and not self.health.retrying:
            return
        self._pausing.resume(self._offsets.assigned, self._offsets.position)
        self.health.retrying = False
        self._log.info("sink recovered; partitions resumed")

    def _note_unclaimed(self, messages: Sequence[Message]) -> None:
        """Pause waiting partitions (the client has them now) and remember the first record it
        delivered of each, so nothing fetched before the pause is skipped later."""
        mine = [
            m
            for m in messages
            if TopicPartition(m.topic() or "", m.partition() or 0) in self._unclaimed
        ]
        self._waiting.note(mine)
        self._waiting.pause(self._unclaimed)

    def _claim_waiting(self) -> None:
        """Ask the sink again where the waiting partitions resume; on an answer, take them on
        from there (the stored offset, else the first record delivered while they waited)."""
        now = time.monotonic()
        if now < self._next_claim:
            return
        parts = sorted(self._unclaimed)
        try:
            stored = dict(self._sink.stored_offsets(parts))
        except RetryableError as exc:
            self._claim_delay = min(self._claim_delay * 2, self._backoff.max_s)
            self._next_claim = now + self._claim_delay
            self._log.warning("the sink still cannot say where partitions resume", error=str(exc))
            return
        self._unclaimed.clear()
        self._claim_delay = self._backoff.max_s / 16
        self._offsets.assign(parts, stored)
        self._update_assigned()
        self._waiting.resume(set(parts), stored.get)
        self._log.info(
            "partitions taken on after the sink answered",
            offsets={str(tp): o for tp, o in stored.items()},
        )

    def _flowing(self, tp: TopicPartition) -> bool:
        """Owned and not paused: what is fetched otherwise is read again later."""
        return tp in self._offsets.assigned and not self._pausing.blocks(tp)

    # -- offsets ---------------------------------------------------------------------------------

    def _stored_offsets(self, partitions: list[TopicPartition]) -> Offsets:
        for attempt in range(1, _STORED_OFFSETS_ATTEMPTS + 1):
            try:
                return self._sink.stored_offsets(partitions)
            except RetryableError as exc:
                if attempt == _STORED_OFFSETS_ATTEMPTS:
                    raise
                self._log.warning("reading stored offsets failed; retrying", error=str(exc))
                time.sleep(min(0.2 * 2**attempt, 2.0))
        raise AssertionError("unreachable")

    def _record_durable(
        self, handed: Mapping[TopicPartition, int], durable: Offsets | None
    ) -> None:
        """Remember what the sink made durable (``None``: everything it was handed)."""
        self._latency.durable(self._offsets.record_durable(handed, durable))

    def _commit(self, offsets: dict[TopicPartition, int], *, asynchronous: bool) -> None:
        if not offsets:
            return
        try:
            self._client.commit(offsets, asynchronous=asynchronous)
        except CommitFailedError as exc:
            self.metrics.count_commit_failure()
            self._log.warning(
                "offset commit failed; the records may be read again",
                error=str(exc),
                offsets={str(k): v for k, v in offsets.items()},
            )
            return
        self._offsets.committed_to(offsets)

    def _account(self, batch: Batch[T], skipped: Mapping[TopicPartition, int]) -> None:
        by_topic: dict[tuple[str, str], int] = {}
        for tp, records in batch.records.items():
            key = (tp.topic, "processed")
            by_topic[key] = by_topic.get(key, 0) + len(records)
        for tp, n in skipped.items():
            key = (tp.topic, "skipped")
            by_topic[key] = by_topic.get(key, 0) + n
        for dead in batch.dead_letters:
            key = (dead.topic, "dlq")
            by_topic[key] = by_topic.get(key, 0) + 1
        for (topic, outcome), n in by_topic.items():
            self.metrics.count(topic, outcome, n)

    def _report_lag(self) -> None:
        if not self._offsets.assigned:
            return
        try:
            watermarks = self._client.high_watermarks(sorted(self._offsets.assigned))
        except Exception as exc:  # a gauge must never stop the loop
            self._log.debug("lag lookup failed", error=str(exc))
            return
        for tp, high in watermarks.items():
            base = self._offsets.lag_base(tp)
            if base is not None and high >= 0:
                self.metrics.set_lag(tp.topic, tp.partition, max(0, high - base))

    def _forget(self, partitions: Sequence[TopicPartition]) -> None:
        self._offsets.forget(partitions)
        self._pausing.forget(partitions)
        self._waiting.forget(partitions)
        self._unclaimed.difference_update(partitions)
        for tp in partitions:
            self._latency.forget(tp)
            self.metrics.drop_lag(tp.topic, tp.partition)
        self._update_assigned()

    def _update_assigned(self) -> None:
        assigned = len(self._offsets.assigned)
        self.health.assigned = assigned
        self.metrics.set_assigned(assigned)


def _by_bytes(messages: list[Message], max_bytes: int) -> list[list[Message]]:
    """``messages`` cut into runs of at most ``max_bytes`` of keys and values (a message larger
    than that is a run of its own). Most polls are one run: this only sums lengths."""
    total = 0
    for m in messages:
        total += len(m.value() or b"") + len(m.key() or b"")
    if total <= max_bytes:
        return [messages]
    runs: list[list[Message]] = []
    run: list[Message] = []
    size = 0
    for m in messages:
        n = len(m.value() or b"") + len(m.key() or b"")
        if run and size + n > max_bytes:
            runs.append(run)
            run, size = [], 0
        run.append(m)
        size += n
    if run:
        runs.append(run)
    return runs


def _refused_batch(exc: PermanentError, current: Batch[T]) -> Batch[T]:
    """The batch a refusal belongs to: the one the sink names, else the one being written."""
    named = exc.batch if isinstance(exc, RejectedError) else None
    return named if isinstance(named, Batch) else current


def _ranges(batch: Batch[T], messages: Sequence[Message]) -> dict[str, str]:
    first: dict[str, int] = {}
    for m in messages:
        key = f"{m.topic()}[{m.partition()}]"
        first.setdefault(key, m.offset() or 0)
    return {
        k: f"{first.get(k, '?')}..{o - 1}"
        for k, o in ((str(tp), o) for tp, o in batch.next_offsets.items())
    }
