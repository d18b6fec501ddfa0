"""Delivering a decoded batch to the sink: dead letters first, then the records.

Dead letters are produced to the DLQ topic, and acknowledged, before the batch is written, so a
commit that passes a dead-lettered record never finds it missing from the DLQ. A write that
fails transiently is retried with the partitions paused (the loop's ``_retrying``). A batch the
store refuses for good (``PermanentError``, usually ``RejectedError``) is never fatal: it is
split until the refusing records are alone (``_isolate.isolate``); those leave the batch as dead
letters and a closing write carries the batch's full position. A sink that writes in the
background reports a refusal later, from a revoke, a tick or a flush: that batch is kept here
(``defer``) and isolated at the next poll, before anything newer is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Generic, Protocol, TypeVar

import structlog

from consumer_runtime._dlq import DlqProducer
from consumer_runtime._errors import PermanentError, RejectedError
from consumer_runtime._isolate import isolate
from consumer_runtime._message import TopicPartition
from consumer_runtime._offsets import OffsetTracker
from consumer_runtime._sink import Batch, DeadLetter, Offsets, Sink

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")


class Retrying(Protocol):
    """``fn(arg)``, retried while it raises ``RetryableError`` (partitions paused meanwhile)."""

    def __call__(self, fn: Callable[[A], R], arg: A, /) -> R: ...


class Delivery(Generic[T]):
    """Writes batches to the sink and the DLQ topic; isolates what the store refuses."""

    def __init__(
        self,
        *,
        service: str,
        sink: Sink[T],
        dlq: DlqProducer,
        dlq_topic: str,
        offsets: OffsetTracker,
        retrying: Retrying,
        record_durable: Callable[[Mapping[TopicPartition, int], Offsets | None], None],
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self._service = service
        self._sink = sink
        self._dlq = dlq
        self._dlq_topic = dlq_topic
        self._offsets = offsets
        self._retrying = retrying
        self._record_durable = record_durable
        self._log = log
        # Batches a sink reported refused outside ``write_batch`` (a revoke, a tick): isolated
        # at the start of the next poll, before anything newer is written.
        self.refused: list[tuple[Batch[T], PermanentError]] = []

    def deliver(self, batch: Batch[T]) -> Offsets | None:
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

    def defer(self, exc: PermanentError) -> None:
        """A refusal reported outside ``write_batch``: isolate its batch at the next poll."""
        refused = exc.batch if isinstance(exc, RejectedError) else None
        if not isinstance(refused, Batch):
            # A sink refused something it cannot name: nothing the runtime can isolate.
            raise exc
        self._log.warning(
            "the store refused a batch; isolating it at the next poll", error=str(exc)
        )
        self.refused.append((refused, exc))

    def isolate_deferred(self) -> None:
        """Isolate every batch ``defer`` kept, oldest first."""
        while self.refused:
            refused, exc = self.refused[0]
            durable = self._isolate(refused, exc)
            self.refused.pop(0)
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

    def _send_dead_letters(self, dead_letters: list[DeadLetter]) -> None:
        self._dlq.send(self._dlq_topic, dead_letters, self._service)


def _refused_batch(exc: PermanentError, current: Batch[T]) -> Batch[T]:
    """The batch a refusal belongs to: the one the sink names, else the one being written."""
    named = exc.batch if isinstance(exc, RejectedError) else None
    return named if isinstance(named, Batch) else current
