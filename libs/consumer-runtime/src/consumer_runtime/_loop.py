"""The consumer loop: poll a batch, decode, dead-letter, write to the sink, commit.

Single-threaded: rebalance callbacks run inside ``consume`` on the same thread, so between two
polls nothing is in flight except a batch waiting out a ``RetryableError``. While it waits, every
assigned partition is paused and the loop keeps polling (group membership survives); after the
write succeeds the partitions resume from the first unprocessed offset.

Offsets are "next offset to read" everywhere. ``_positions`` is how far the sink has been given
records; what is committed to Kafka depends on the ``CommitStrategy``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

import structlog
import tenacity
from cdc_events import ParseError

from consumer_runtime._client import ConsumerClient
from consumer_runtime._dlq import DlqProducer, dead_letter
from consumer_runtime._errors import CommitFailedError, PermanentError, RetryableError
from consumer_runtime._health import HealthState
from consumer_runtime._latency import DurableLatency
from consumer_runtime._message import Message, TopicPartition
from consumer_runtime._metrics import Metrics
from consumer_runtime._sink import (
    Batch,
    CommitStrategy,
    Decoder,
    Offsets,
    Sink,
    source_timestamp_ms,
)

T = TypeVar("T")
R = TypeVar("R")

_DLQ_ERRORS = (ParseError, PermanentError)
# Longest single wait inside a retry pause: how quickly a shutdown request is noticed.
_PAUSE_POLL_S = 0.5
# Lag is read from the client's cached watermarks; every few seconds is plenty for a gauge.
_LAG_INTERVAL_S = 5.0
# Looking up the sink's stored offsets happens inside the assignment callback, where the loop
# cannot keep polling; a few quick attempts ride out a blip, a real outage restarts the pod.
_STORED_OFFSETS_ATTEMPTS = 5


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
        self._backoff = backoff
        self.metrics = metrics
        self.health = health
        self._log = structlog.get_logger("consumer_runtime").bind(service=service)
        self._stop = threading.Event()
        self._failed = False
        self._assigned: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._durable: dict[TopicPartition, int] = {}
        self._latency = DurableLatency(self.metrics.observe_latency)
        self._committed: dict[TopicPartition, int] = {}
        self._inflight: Batch[T] | None = None
        self._paused: set[TopicPartition] = set()
        self._rewind: dict[TopicPartition, int] = {}
        self._next_lag = 0.0
        self._next_commit = 0.0
        self._commit_interval_s = commit_interval_s
        self._tick_interval_s = tick_interval_s
        self._next_tick = time.monotonic() + tick_interval_s
        health.sink_healthy = sink.healthy

    # -- public surface used by the runtime and the test kit --------------------------------

    @property
    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    @property
    def positions(self) -> dict[TopicPartition, int]:
        return dict(self._positions)

    @property
    def committed(self) -> dict[TopicPartition, int]:
        return dict(self._committed)

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
        if not messages:
            return 0
        started = time.perf_counter()
        batch, skipped = self._decode(messages)
        if not batch.next_offsets:
            return 0
        self._inflight = batch
        try:
            if batch.dead_letters:
                self._retrying(self._send_dead_letters, batch)
            durable = self._retrying(self._write, batch)
        except BaseException as exc:
            if not isinstance(exc, StopRequested | RetryableError):
                self._failed = True
                self._log.exception(
                    "sink failed with an unexpected error; exiting without committing the batch",
                    batches=_ranges(batch, messages),
                )
            raise
        finally:
            self._inflight = None
        for tp, offset in batch.next_offsets.items():
            self._positions[tp] = offset
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
            self._commit(self._commit_targets(list(self._assigned)), asynchronous=True)
        self._account(batch, skipped)
        self.metrics.observe_batch(time.perf_counter() - started)
        return len(messages)

    def tick(self) -> None:
        """Give the sink its wall-clock turn (``Sink.tick``) and commit what it made durable.

        A windowed sink closes windows that went quiet here, so a stream that stops still gets
        its last window written and committed, without waiting for the next record. A commit
        the rate limit deferred goes out here too: otherwise a stream that went quiet right
        after a batch would show that batch as lag until the next record (to ``cdc status``,
        dashboards and a lag-driven autoscaler), although the sink has it.
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
            if durable:
                self._record_durable(durable, durable)
                self._commit(self._commit_targets(list(self._assigned)), asynchronous=True)
                return
        now = time.perf_counter()
        if now >= self._next_commit:
            targets = self._commit_targets(list(self._assigned))
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
        self._record_durable(dict(self._positions), durable)
        self._commit(self._commit_targets(list(self._assigned)), asynchronous=False)

    # -- rebalance listener (called by the client inside consume) ---------------------------

    def on_assign(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]:
        self.metrics.count_rebalance("assign")
        self._assigned.update(partitions)
        self._update_assigned()
        self._log.info("partitions assigned", partitions=[str(p) for p in partitions])
        if self._failed:
            return {}
        self._sink.on_assign(partitions)
        if self._strategy is not CommitStrategy.SINK_MANAGED:
            return {}
        stored = dict(self._stored_offsets(partitions))
        self._positions.update(stored)
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
            self._record_durable(
                {tp: self._positions[tp] for tp in partitions if tp in self._positions}, durable
            )
            self._commit(self._commit_targets(partitions), asynchronous=False)
        self._forget(partitions)

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        self.metrics.count_rebalance("lost")
        self._log.warning(
            "partitions lost; committing nothing for them", partitions=[str(p) for p in partitions]
        )
        if self._inflight is not None:
            self._inflight.without(partitions)
        if not self._failed:
            self._sink.on_lost(partitions)
        self._forget(partitions)

    # -- internals -----------------------------------------------------------------------------

    def _decode(self, messages: list[Message]) -> tuple[Batch[T], dict[TopicPartition, int]]:
        # The hot path: messages arrive in runs per partition, so per-partition state is looked
        # up once per run, and the next offset is stored once per run.
        batch: Batch[T] = Batch()
        records = batch.records
        next_offsets = batch.next_offsets
        skipped: dict[TopicPartition, int] = {}
        decoder = self._decoder
        cur_topic: str | None = None
        cur_partition: int | None = -1
        tp = TopicPartition("", -1)
        out: list[T] = []
        keep = False
        floor = -1
        last = -1
        for message in messages:
            partition = message.partition()
            topic = message.topic()
            if partition != cur_partition or topic != cur_topic:
                if last >= 0:
                    next_offsets[tp] = last + 1
                    last = -1
                cur_topic, cur_partition = topic, partition
                tp = TopicPartition(topic or "", partition or 0)
                # Not (or no longer) ours, or paused: what is fetched now is re-read after resume.
                keep = tp in self._assigned and tp not in self._paused
                floor = self._positions.get(tp, -1)
                out = records.setdefault(tp, [])
            offset = message.offset() or 0
            if not keep or offset < floor:
                continue  # stale: before the position (already processed, or before a seek)
            try:
                value = decoder(message)
            except _DLQ_ERRORS as exc:
                dead = dead_letter(message, exc)
                batch.dead_letters.append(dead)
                self._log.warning(
                    "record dead-lettered",
                    topic=dead.topic,
                    partition=dead.partition,
                    offset=dead.offset,
                    code=dead.code,
                    error=dead.message,
                )
            else:
                if value is None:
                    skipped[tp] = skipped.get(tp, 0) + 1
                else:
                    out.append(value)
            last = offset
        if last >= 0:
            next_offsets[tp] = last + 1
        for key in [k for k, v in records.items() if not v]:
            del records[key]
        return batch, skipped

    def _send_dead_letters(self, batch: Batch[T]) -> None:
        if batch.dead_letters:
            self._dlq.send(self._dlq_topic, batch.dead_letters, self.service)

    def _write(self, batch: Batch[T]) -> Offsets | None:
        if not batch.next_offsets:
            return {}  # every partition of the batch was revoked while it waited
        return self._sink.write_batch(batch)

    def _retrying(self, fn: Callable[[Batch[T]], R], batch: Batch[T]) -> R:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetryableError),
            wait=self._backoff,
            sleep=self._sleep_polling,
            before_sleep=self._before_retry_sleep,
            reraise=True,
        )
        return retrying(fn, batch)

    def _before_retry_sleep(self, state: tenacity.RetryCallState) -> None:
        self.metrics.count_retry()
        if not self._paused and self._assigned:
            self._paused = set(self._assigned)
            self._client.pause(sorted(self._paused))
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
            for message in self._client.consume(self._batch_size, min(left, _PAUSE_POLL_S)):
                tp = TopicPartition(message.topic() or "", message.partition() or 0)
                offset = message.offset() or 0
                if offset < self._rewind.get(tp, offset + 1):
                    self._rewind[tp] = offset
            self.health.tick()

    def _resume_if_paused(self) -> None:
        if not self._paused and not self.health.retrying:
            return
        paused = sorted(self._paused & self._assigned)
        self._paused.clear()
        self.health.retrying = False
        if paused:
            self._client.resume(paused)
            for tp in paused:
                target = self._positions.get(tp, self._rewind.get(tp))
                if target is not None:
                    self._client.seek(tp, target)
        self._rewind.clear()
        self._log.info("sink recovered; partitions resumed")

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
        reported = handed if durable is None else durable
        for tp, reported_offset in reported.items():
            if tp in self._assigned:
                # Never beyond what the sink was given: a sink's report cannot skip records.
                offset = min(reported_offset, self._positions.get(tp, reported_offset))
                if offset > self._durable.get(tp, -1):
                    self._durable[tp] = offset
        self._latency.durable({tp: self._durable[tp] for tp in reported if tp in self._durable})

    def _commit_targets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        source = self._positions if self._strategy is CommitStrategy.SINK_MANAGED else self._durable
        return {
            tp: source[tp]
            for tp in partitions
            if tp in source and source[tp] > self._committed.get(tp, -1)
        }

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
        self._committed.update(offsets)

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
        if not self._assigned:
            return
        try:
            watermarks = self._client.high_watermarks(sorted(self._assigned))
        except Exception as exc:  # a gauge must never stop the loop
            self._log.debug("lag lookup failed", error=str(exc))
            return
        for tp, high in watermarks.items():
            position = self._positions.get(tp, self._committed.get(tp))
            if position is not None and high >= 0:
                self.metrics.set_lag(tp.topic, tp.partition, high - position)

    def _forget(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            self._assigned.discard(tp)
            self._positions.pop(tp, None)
            self._durable.pop(tp, None)
            self._latency.forget(tp)
            self._committed.pop(tp, None)
            self._paused.discard(tp)
            self._rewind.pop(tp, None)
            self.metrics.drop_lag(tp.topic, tp.partition)
        self._update_assigned()

    def _update_assigned(self) -> None:
        self.health.assigned = len(self._assigned)
        self.metrics.set_assigned(len(self._assigned))


def _ranges(batch: Batch[T], messages: Sequence[Message]) -> dict[str, str]:
    first: dict[str, int] = {}
    for m in messages:
        key = f"{m.topic()}[{m.partition()}]"
        first.setdefault(key, m.offset() or 0)
    return {
        k: f"{first.get(k, '?')}..{o - 1}"
        for k, o in ((str(tp), o) for tp, o in batch.next_offsets.items())
    }
