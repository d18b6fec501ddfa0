"""Retrying a step that failed transiently, with the member's partitions paused meanwhile.

A write the store or the DLQ topic cannot take now (``RetryableError``) is retried with capped
exponential backoff and jitter (``Backoff``; ``RetryableError.delay`` overrides the next wait).
Between attempts every owned partition is paused and the client is polled, so the member stays
in its group and a rebalance is served (``PausedRetry.sleep_polling``); ``/readyz`` is false
meanwhile. A shutdown request ends the wait (``StopRequested``). After a success the loop
resumes the paused partitions, each sought back so nothing fetched during the pause is skipped
(``_pausing.Pausing``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import structlog
import tenacity

from consumer_runtime._client import ConsumerClient
from consumer_runtime._errors import RetryableError
from consumer_runtime._health import HealthState
from consumer_runtime._message import Message, TopicPartition
from consumer_runtime._metrics import Metrics
from consumer_runtime._offsets import OffsetTracker
from consumer_runtime._pausing import Pausing

R = TypeVar("R")
A = TypeVar("A")

# Longest single wait inside a retry pause: how quickly a shutdown request is noticed.
_PAUSE_POLL_S = 0.5


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


class PausedRetry:
    """Retries ``RetryableError`` with every owned partition paused, polling while it waits."""

    def __init__(
        self,
        *,
        client: ConsumerClient,
        batch_size: int,
        backoff: Backoff,
        offsets: OffsetTracker,
        health: HealthState,
        metrics: Metrics,
        stop: threading.Event,
        note: Callable[[Sequence[Message]], None],
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self._client = client
        self._batch_size = batch_size
        self._backoff = backoff
        self._offsets = offsets
        self._health = health
        self._metrics = metrics
        self._stop = stop
        self._note = note
        self._log = log
        self.pausing = Pausing(client)

    def run(self, fn: Callable[[A], R], arg: A, sleep: Callable[[float], None]) -> R:
        """``fn(arg)``, retried while it raises ``RetryableError``; ``sleep`` waits a backoff
        out (``sleep_polling``, or the loop's stand-in for it)."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetryableError),
            wait=self._backoff,
            sleep=sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return retrying(fn, arg)

    def _before_sleep(self, state: tenacity.RetryCallState) -> None:
        self._metrics.count_retry()
        self.pausing.pause(self._offsets.assigned)
        self._health.retrying = True
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        self._log.warning(
            "transient failure; partitions paused, retrying",
            error=str(exc),
            attempt=state.attempt_number,
            delay_s=round(delay, 2),
        )

    def sleep_polling(self, seconds: float) -> None:
        """Wait out a backoff while polling, so the member stays in its group."""
        deadline = time.monotonic() + seconds
        while True:
            if self._stop.is_set():
                raise StopRequested
            left = deadline - time.monotonic()
            if left <= 0:
                return
            messages = self._client.consume(self._batch_size, min(left, _PAUSE_POLL_S))
            self.pausing.note(messages)
            self._note(messages)
            # A partition assigned inside that consume is paused now that the client has it.
            self.pausing.pause(self._offsets.assigned)
            self._health.tick()

    def resume_if_paused(self) -> None:
        """After a success: resume the paused partitions, each sought back to the position."""
        if not self.pausing.active and not self._health.retrying:
            return
        self.pausing.resume(self._offsets.assigned, self._offsets.position)
        self._health.retrying = False
        self._log.info("sink recovered; partitions resumed")

    def blocks(self, tp: TopicPartition) -> bool:
        """Whether ``tp`` is paused for a retry (what is fetched from it is read again)."""
        return self.pausing.blocks(tp)
