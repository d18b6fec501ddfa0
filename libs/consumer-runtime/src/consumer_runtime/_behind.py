"""``WriteBehind``: a sink that writes each batch synchronously, written one batch behind.

A synchronous sink's ``write_batch`` returns when the batch is durable, so the loop polls and
decodes the next batch only then, and the store waits meanwhile. Wrapped, each batch is handed
to one background thread and ``write_batch`` returns at once; the next call first waits for the
previous batch (one batch in flight, in order) and reports it durable then. The next batch's
poll and decoding overlap the previous batch's writes.

The runtime's protocol for sinks that write in the background carries the rest:

- **Durable before committed.** A batch's offsets are reported (and committed) only when its
  write returned: from the next ``write_batch``, a ``tick`` once it finished (``tick_due``
  asks the loop for one on its next poll, so a quiet stream's last batch does not wait for
  the clock), a revoke or the final ``flush``; a crash loses only uncommitted work, which is
  read again.
- **Transient failures.** A background write's ``RetryableError`` is raised by the next call
  (``write_batch``, ``tick``, ``on_revoke``, ``flush``), and the batch is written again,
  synchronously, by every call after it until it succeeds, before anything newer: the runtime's
  backoff and pausing apply as to any write.
- **Refusals.** A background write's ``PermanentError`` is raised by the next call as a
  ``RejectedError`` naming that batch (``batch=``): the runtime isolates the refused records of
  that batch (dead letters) before it writes the current one.
- **Rebalances.** A revoke waits for the batch in flight (the revoked partitions' records are
  then durable and committed, as without the wrapper); a lost partition is dropped from a batch
  that still has to be written again.

The wrapped sink's ``write_batch`` must be safe to call from another thread than its other
hooks, one call at a time (the wrapper never overlaps two of its calls), and must report the
whole batch durable (return ``None``): a sink that holds records itself needs no wrapper.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from consumer_runtime._errors import PermanentError, RejectedError, RetryableError
from consumer_runtime._message import TopicPartition
from consumer_runtime._sink import Batch, Offsets, Sink

__all__ = ["WriteBehind"]

T = TypeVar("T")


class WriteBehind(Generic[T]):
    """``sink`` (synchronous) written one batch behind (see the module docstring)."""

    def __init__(self, sink: Sink[T]) -> None:
        self.sink = sink
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="write-behind")
        #: the batch handed and not reported durable yet
        self._batch: Batch[T] | None = None
        #: its write in the background; None: it failed and is written again by the next call
        self._write: Future[Offsets | None] | None = None

    @property
    def metrics_registry(self) -> Any:
        """The wrapped sink's registry, served by the runtime next to its own."""
        return getattr(self.sink, "metrics_registry", None)

    # -- Sink --------------------------------------------------------------------------------

    def write_batch(self, batch: Batch[T]) -> Offsets | None:
        durable = self._settle()
        self._batch = batch
        self._write = self._thread.submit(self.sink.write_batch, batch)
        return durable

    def flush(self) -> Offsets | None:
        self._settle()
        return self.sink.flush()

    def tick(self) -> Offsets | None:
        if self._batch is None or (self._write is not None and not self._write.done()):
            return None
        return self._settle() or None

    def tick_due(self) -> bool:
        """Whether the batch behind finished writing and waits to be reported (the loop then
        ticks on its next poll). A failed write waits for the runtime's own tick or batch."""
        write = self._write
        return write is not None and write.done()

    def on_revoke(self, partitions: Sequence[TopicPartition]) -> Offsets | None:
        self._settle()
        return self.sink.on_revoke(partitions)

    def on_lost(self, partitions: Sequence[TopicPartition]) -> None:
        if self._write is not None:
            self._write.exception()  # wait; whatever it did, those partitions are not ours
        if self._batch is not None:
            self._batch.without(partitions)
            if not self._batch.next_offsets:
                self._batch = self._write = None
        self.sink.on_lost(partitions)

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> Offsets:
        return self.sink.stored_offsets(partitions)

    def on_assign(self, partitions: Sequence[TopicPartition]) -> None:
        self.sink.on_assign(partitions)

    def healthy(self) -> bool:
        return self.sink.healthy()

    def close(self) -> None:
        if self._write is not None:
            self._write.exception()  # let the write in flight finish (a stop flushed it first)
        self._thread.shutdown(wait=True)
        self.sink.close()

    # -- the batch behind ----------------------------------------------------------------------

    def _settle(self) -> dict[TopicPartition, int]:
        """Wait for the batch behind (or write it again, here, if it failed before): its
        offsets once durable; its failure raised as described in the module docstring."""
        batch, write = self._batch, self._write
        if batch is None:
            return {}
        try:
            reported = self.sink.write_batch(batch) if write is None else write.result()
        except RetryableError:
            self._write = None  # written again by the next call, before anything newer
            raise
        except PermanentError as exc:
            self._batch = self._write = None
            if isinstance(exc, RejectedError) and isinstance(exc.batch, Batch):
                raise
            raise RejectedError(exc.message, code=exc.code, batch=batch) from exc
        self._batch = self._write = None
        return dict(batch.next_offsets if reported is None else reported)
