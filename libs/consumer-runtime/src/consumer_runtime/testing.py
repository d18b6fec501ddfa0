"""Drive a sink through the real consumer loop over in-memory messages: no broker needed.

    harness = SinkHarness(MySink(), decode, strategy=CommitStrategy.SINK_MANAGED)
    harness.produce("orders", [b'{"id": 1}', b"not json"])
    harness.run_until_idle()
    harness.shutdown()
    assert harness.committed == {TopicPartition("orders", 0): 2}
    assert [d.code for d in harness.dead_letters] == ["not_json"]

``InMemoryConsumer`` (from ``_inmemory``) implements the runtime's consumer Protocol
(assignment, pause/resume, seek, commits) and can simulate rebalances (``revoke``, ``lose``,
``assign``); ``InMemoryDlq`` records dead letters and can be told to fail.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from prometheus_client import CollectorRegistry

from consumer_runtime._health import HealthState
from consumer_runtime._inmemory import DeadLetterRecord, InMemoryConsumer, InMemoryDlq
from consumer_runtime._loop import ConsumerLoop
from consumer_runtime._message import InMemoryMessage, TopicPartition
from consumer_runtime._metrics import Metrics
from consumer_runtime._retry import Backoff
from consumer_runtime._sink import (
    BaseSink,
    Batch,
    CommitStrategy,
    DeadLetter,
    Decoder,
    Offsets,
    Sink,
)

if TYPE_CHECKING:
    from consumer_runtime._runtime import Runtime

T = TypeVar("T")

__all__ = [
    "Batch",
    "DeadLetterRecord",
    "ForwardingSink",
    "InMemoryConsumer",
    "InMemoryDlq",
    "InMemoryMessage",
    "SinkHarness",
    "run_sink",
    "run_until",
]


class SinkHarness(Generic[T]):
    """The real ``ConsumerLoop`` over an ``InMemoryConsumer`` and an ``InMemoryDlq``."""

    def __init__(
        self,
        sink: Sink[T],
        decoder: Decoder[T],
        *,
        strategy: CommitStrategy = CommitStrategy.COMMIT_AFTER_FLUSH,
        service: str = "test-service",
        batch_size: int = 500,
        batch_max_bytes: int = 1024**3,
        decode_failure_limit: int = 100,
        topics: Sequence[str] = (),
        dlq_topic: str | None = None,
        # Retries in unit tests should take milliseconds, not seconds.
        retry_initial_s: float = 0.001,
        retry_max_s: float = 0.01,
        # 0: commit after every batch; the service default (1 s) rate-limits commits.
        commit_interval_s: float = 0.0,
    ) -> None:
        self.sink = sink
        self.consumer = InMemoryConsumer()
        self.dlq = InMemoryDlq()
        self.metrics = Metrics(service, CollectorRegistry())
        self.health = HealthState(liveness_timeout_s=60.0)
        self._topics = list(topics)
        self.loop: ConsumerLoop[T] = ConsumerLoop(
            service=service,
            client=self.consumer,
            decoder=decoder,
            sink=sink,
            strategy=strategy,
            dlq=self.dlq,
            dlq_topic=dlq_topic or f"{service}.dlq",
            batch_size=batch_size,
            batch_max_wait_s=0.0,
            batch_max_bytes=batch_max_bytes,
            decode_failure_limit=decode_failure_limit,
            backoff=Backoff(retry_initial_s, retry_max_s),
            metrics=self.metrics,
            health=self.health,
            commit_interval_s=commit_interval_s,
            # Ticks are driven explicitly in unit tests (``harness.tick()``), never by the clock.
            tick_interval_s=float("inf"),
        )
        self._subscribed = False

    def produce(
        self,
        topic: str,
        values: Iterable[bytes | None],
        *,
        partition: int = 0,
        key: bytes | None = None,
        timestamp_ms: int = 0,
    ) -> list[InMemoryMessage]:
        return self.consumer.produce(
            topic, values, partition=partition, key=key, timestamp_ms=timestamp_ms
        )

    def poll(self) -> int:
        """One iteration of the loop (one batch); returns how many messages it handled."""
        if not self._subscribed:
            self.loop.subscribe(self._topics)
            self._subscribed = True
        return self.loop.poll_once()

    def tick(self) -> None:
        """The sink's wall-clock turn (what the loop does about once a second)."""
        self.loop.tick()

    def run_until_idle(self, max_polls: int = 100_000) -> int:
        """Poll until every assigned partition is consumed; returns the number of batches."""
        batches = 0
        for _ in range(max_polls):
            handled = self.poll()
            if handled:
                batches += 1
            elif self.consumer.remaining() == 0:
                return batches
        raise AssertionError(f"still not idle after {max_polls} polls")

    def shutdown(self) -> None:
        """What a SIGTERM does: flush, commit, close (the consumer revokes everything)."""
        self.loop.request_stop()
        self.loop.finish()
        self.consumer.close()
        self.sink.close()

    @property
    def committed(self) -> dict[TopicPartition, int]:
        return dict(self.consumer.committed)

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return [r.dead_letter for r in self.dlq.records]

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


def run_sink(
    sink: Sink[T],
    decoder: Decoder[T],
    messages: Mapping[str, Sequence[bytes | None]],
    *,
    strategy: CommitStrategy = CommitStrategy.COMMIT_AFTER_FLUSH,
    batch_size: int = 500,
) -> SinkHarness[T]:
    """Produce ``{topic: [value, ...]}`` to partition 0, run to the end, shut down."""
    harness = SinkHarness(sink, decoder, strategy=strategy, batch_size=batch_size)
    for topic, values in messages.items():
        harness.produce(topic, values)
    harness.run_until_idle()
    harness.shutdown()
    return harness


class ForwardingSink(BaseSink[T]):
    """Passes every hook to ``inner`` (with ``inner=None``, the ``BaseSink`` no-ops): the base
    of a wrapper that observes a sink (counts, times, reports) by overriding a hook or two."""

    def __init__(self, inner: Sink[T] | None) -> None:
        self.inner = inner

    def write_batch(self, batch: Batch[T]) -> Offsets | None:
        return None if self.inner is None else self.inner.write_batch(batch)

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> Offsets:
        return {} if self.inner is None else self.inner.stored_offsets(partitions)

    def on_assign(self, partitions: Sequence[TopicPartition]) -> None:
        if self.inner is not None:
            self.inner.on_assign(partitions)

    def on_revoke(self, partitions: Sequence[TopicPartition]) -> Offsets | None:
        return None if self.inner is None else self.inner.on_revoke(partitions)

    def on_lost(self, partitions: Sequence[TopicPartition]) -> None:
        if self.inner is not None:
            self.inner.on_lost(partitions)

    def flush(self) -> Offsets | None:
        return None if self.inner is None else self.inner.flush()

    def tick(self) -> Offsets | None:
        return None if self.inner is None else self.inner.tick()

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()

    def healthy(self) -> bool:
        return True if self.inner is None else self.inner.healthy()


def run_until(runtime: Runtime[Any], done: threading.Event, timeout_s: float = 300.0) -> bool:
    """Run ``runtime`` on a thread until ``done`` is set or ``timeout_s`` passes, then stop it
    and wait for it to exit (its final flush and commit included). Returns whether ``done``
    was set. For benchmarks and tests that drive the real loop against a real broker."""
    thread = threading.Thread(target=runtime.run, name="runtime")
    thread.start()
    try:
        return done.wait(timeout_s)
    finally:
        runtime.stop()
        thread.join(60)
