"""The event store's sink: each batch and its offsets in one PostgreSQL transaction.

The rows of a batch and its next offsets are committed together (``store.BatchWriter``), so
after a crash the runtime (``SINK_MANAGED``) resumes from the stored offsets and every change is
stored exactly once; ids already stored (redeliveries, Debezium re-emits) are absorbed.

The write of batch N runs on a writer thread while the runtime polls and decodes batch N+1:
``write_batch(N)`` first waits for the write of N-1, then hands N over and reports N-1's offsets
as durable. The database's time and the decoding then overlap instead of adding up. The order
of writes is the order of batches, never more than one is in flight, and the runtime is told a
batch is durable only once its transaction committed. If a background write fails for a
transient reason, its batch is kept and written again, alone and before anything newer: on the
runtime's next tick (a quiet stream does not wait for traffic) or at the next batch, whichever
comes first, synchronously, so a ``RetryableError`` reaches the runtime (pause, retry, nothing
lost). If the database refused a value of it for good, the batch is handed back to the runtime
(``RejectedError(batch=...)``), which isolates the refused records and dead-letters them.
Revoke, lost, flush and close wait for the write in flight.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import structlog
from consumer_runtime import (
    BaseSink,
    Batch,
    Offsets,
    PermanentError,
    RejectedError,
    RetryableError,
    TopicPartition,
)
from prometheus_client import CollectorRegistry
from sink_kit.metrics import PoolCollector

from event_store_writer._metrics import SERVICE, StoreMetrics
from event_store_writer._prepared import Prepared
from event_store_writer.domain import StoreRecord
from event_store_writer.settings import Settings
from event_store_writer.store import BatchWriter, Engine, connect, ping

__all__ = ["SERVICE", "EventStoreSink", "StoreMetrics"]

_log = structlog.get_logger("event_store_writer")

# /readyz asks for the sink's health on every probe; a probe of the database at most this often.
_HEALTH_CACHE_S = 5.0


class EventStoreSink(BaseSink[StoreRecord]):
    """Appends batches to the event store, one transaction each, one write in flight."""

    def __init__(
        self,
        engine: Engine,
        group_id: str,
        *,
        partitions_ahead: int = 3,
        metrics: StoreMetrics | None = None,
        pipelined: bool = True,
    ) -> None:
        self._engine = engine
        self._writer = BatchWriter(
            engine, group_id, partitions_ahead, metrics if metrics is not None else StoreMetrics()
        )
        self._pipelined = pipelined
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-store-write")
        self._inflight: tuple[Future[None], _Handed] | None = None
        # Batches handed over whose write failed: written again before anything newer.
        self._pending: list[_Handed] = []
        # Next offsets committed to the store and not yet reported to the runtime.
        self._durable: dict[TopicPartition, int] = {}
        self._health: tuple[float, bool] = (0.0, True)

    @classmethod
    def from_settings(cls, settings: Settings) -> EventStoreSink:
        """The production wiring: engine from ``DATABASE_URL``, schema migrated at start."""
        engine = connect(settings)
        metrics = StoreMetrics()
        # The pool's use, read when scraped (``cdc_db_pool_checked_out``, ``cdc_db_pool_size``).
        metrics.registry.register(PoolCollector(engine, SERVICE))
        sink = cls(
            engine,
            settings.group_id(SERVICE),
            partitions_ahead=settings.partitions_ahead,
            metrics=metrics,
        )
        sink.ensure_ahead()
        return sink

    @property
    def metrics(self) -> StoreMetrics:
        return self._writer.metrics

    @property
    def metrics_registry(self) -> CollectorRegistry:
        """The writer's own metrics; the runtime serves them on its ``/metrics``."""
        return self._writer.metrics.registry

    def ensure_ahead(self) -> None:
        """Partitions for the current month and the configured number of months after it."""
        self._writer.ensure_ahead()

    # -- the runtime's hooks ------------------------------------------------------------------

    def write_batch(self, batch: Batch[StoreRecord]) -> Offsets | None:
        # Encoding happens here, on the loop's thread, while the previous write runs: the
        # writer thread then only waits on the database.
        handed = _Handed(batch, self._prepare(batch))
        self._settle()
        if self._pending or not self._pipelined:
            self._write_pending()  # RetryableError: the runtime retries
            self._write_now([handed])
            return self._take_durable() if self._pipelined else None
        future = self._executor.submit(self._writer.write_prepared, [handed.prepared])
        self._inflight = (future, handed)
        return self._take_durable()

    def tick(self) -> Offsets | None:
        """Report the write in flight as durable once it committed, and write a batch whose
        background write failed now, not when the next record arrives (quiet streams)."""
        if self._inflight is not None and self._inflight[0].done():
            self._settle()
        self._write_pending()
        return self._take_durable()

    def tick_due(self) -> bool:
        """Whether the write in flight has ended: the loop then ticks on its next poll that
        brings nothing new, so a quiet stream's last batch is reported (and its latency
        observed) at once, not on the clock's next tick."""
        return self._inflight is not None and self._inflight[0].done()

    def flush(self) -> Offsets | None:
        self._settle()
        self._write_pending()
        self._durable.clear()
        return None

    def on_revoke(self, partitions: Sequence[TopicPartition]) -> Offsets | None:
        self._settle()
        try:
            self._write_pending()
        except RetryableError:
            # Not written: the next owner reads these records again from stored offsets.
            self._drop(partitions)
            raise
        return self._take_durable()

    def on_lost(self, partitions: Sequence[TopicPartition]) -> None:
        # The write in flight ends (it cannot be cancelled mid-transaction); if the partitions'
        # new owner claimed them first, its offsets check fences it. Nothing is written after.
        try:
            self._settle()
        finally:
            self._drop(partitions)

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> Offsets:
        """The store's offsets, and 0 (the beginning) for a partition it has none for.

        The store is the only truth: the runtime also commits its positions to Kafka (for lag
        monitoring), and while a write is in flight those are ahead of the store, so the group's
        Kafka offset must never be where a partition resumes.
        """
        stored = self._writer.load_offsets(partitions)
        return {tp: stored.get(tp, 0) for tp in partitions}

    def healthy(self) -> bool:
        checked_at, ok = self._health
        now = time.monotonic()
        if now - checked_at < _HEALTH_CACHE_S:
            return ok
        try:
            ping(self._engine)
            ok = True
        except Exception:  # a probe answers "unhealthy" whatever the failure
            ok = False
        self._health = (now, ok)
        return ok

    def close(self) -> None:
        try:
            self._settle()
        finally:
            self._executor.shutdown(wait=True)
            self._engine.dispose()

    # -- internals ------------------------------------------------------------------------------

    def _prepare(self, batch: Batch[StoreRecord]) -> Prepared:
        try:
            return self._writer.prepare([batch])
        except (ValueError, TypeError, OverflowError) as exc:
            # A value the COPY encoding cannot take: the runtime isolates the record.
            raise RejectedError(f"encoding a batch for the event store: {exc}") from exc

    def _write_now(self, handed: list[_Handed]) -> None:
        """Write ``handed`` in one transaction on this thread; on success forget them."""
        self._writer.write_prepared([h.prepared for h in handed])
        for done in handed:
            self._durable.update(done.batch.next_offsets)

    def _write_pending(self) -> None:
        """Write the batch whose background write failed, alone: a refusal then names it."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        try:
            self._write_now(pending)
        except RetryableError:
            self._pending = pending
            raise
        except PermanentError as exc:
            _log.warning("the store refused a batch; handing it back", error=str(exc))
            raise RejectedError(exc.message, code=exc.code, batch=pending[-1].batch) from (
                exc.__cause__ or exc
            )

    def _settle(self) -> None:
        """Wait for the write in flight; a transient failure keeps its batch for a rewrite, a
        refusal hands it back to the runtime (``RejectedError(batch=...)``)."""
        if self._inflight is None:
            return
        future, handed = self._inflight
        self._inflight = None
        try:
            future.result()
        except RetryableError as exc:
            _log.warning("background write failed; it is written again first", error=str(exc))
            self._pending.append(handed)
            return
        except PermanentError as exc:
            _log.warning("the store refused a batch; handing it back", error=str(exc))
            raise RejectedError(exc.message, code=exc.code, batch=handed.batch) from (
                exc.__cause__ or exc
            )
        self._durable.update(handed.batch.next_offsets)

    def _take_durable(self) -> dict[TopicPartition, int]:
        durable, self._durable = self._durable, {}
        return durable

    def _drop(self, partitions: Sequence[TopicPartition]) -> None:
        kept = []
        for handed in self._pending:
            handed.batch.without(partitions)
            if handed.batch.next_offsets:
                kept.append(_Handed(handed.batch, self._writer.prepare([handed.batch])))
        self._pending = kept
        for tp in partitions:
            self._durable.pop(tp, None)


@dataclass(frozen=True, slots=True)
class _Handed:
    """A batch handed to the sink and its prepared (encoded) form."""

    batch: Batch[StoreRecord]
    prepared: Prepared
