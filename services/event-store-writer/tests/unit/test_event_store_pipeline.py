"""The sink's pipelined write (one batch in flight) in the real loop, with a fake store."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from cdc_events.testing import make_change
from consumer_runtime import Batch, CommitStrategy, RetryableError, TopicPartition
from consumer_runtime.testing import SinkHarness
from event_store_writer import EventDecoder, EventStoreSink, StoreRecord


class FakeWriter:
    """Records what was written; ``fail`` makes the next writes raise RetryableError."""

    def __init__(self) -> None:
        self.written: list[int] = []  # Kafka offsets, in write order
        self.offsets: dict[TopicPartition, int] = {}
        self.fail = 0
        self.calls = 0
        self.lock = threading.Lock()

    def prepare(self, batches: Sequence[Batch[StoreRecord]]) -> list[Batch[StoreRecord]]:
        return list(batches)

    def write_prepared(self, preps: Sequence[list[Batch[StoreRecord]]]) -> None:
        self.write([b for p in preps for b in p])

    def write(self, batches: Sequence[Batch[StoreRecord]]) -> None:
        with self.lock:
            self.calls += 1
            if self.fail:
                self.fail -= 1
                raise RetryableError("database unavailable (test)")
            for batch in batches:
                for record in batch:
                    self.written.append(record.values[5])  # type: ignore[union-attr]
                self.offsets.update(batch.next_offsets)

    def load_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: o for tp, o in self.offsets.items() if tp in partitions}


def _sink(writer: FakeWriter) -> EventStoreSink:
    sink = EventStoreSink(None, "g")  # type: ignore[arg-type]
    sink._writer = writer  # type: ignore[assignment]
    sink._engine = type("E", (), {"dispose": lambda self: None})()  # type: ignore[assignment]
    return sink


def _produce(harness: SinkHarness, n: int) -> None:  # type: ignore[type-arg]
    for i in range(n):
        rec = make_change("c", after={"id": i, "name": "x"}, lsn=1000 + i)
        harness.produce(rec.topic, [rec.value], key=rec.key)


def test_batches_are_written_in_order_and_reported_durable_after_the_commit() -> None:
    writer = FakeWriter()
    harness = SinkHarness(
        _sink(writer), EventDecoder(), strategy=CommitStrategy.SINK_MANAGED, batch_size=10
    )
    _produce(harness, 95)
    harness.run_until_idle()
    harness.shutdown()
    assert writer.written == list(range(95))
    tp = TopicPartition("dbserver1.public.products", 0)
    assert writer.offsets == {tp: 95}
    assert harness.committed == {tp: 95}


def test_a_failed_background_write_is_written_again_first_and_nothing_is_lost() -> None:
    writer = FakeWriter()
    sink = _sink(writer)
    harness = SinkHarness(sink, EventDecoder(), strategy=CommitStrategy.SINK_MANAGED, batch_size=10)
    _produce(harness, 20)
    harness.poll()  # batch 0-9 goes to the writer thread
    sink._settle()
    writer.fail = 3  # the next background write and two synchronous retries fail
    harness.poll()  # batch 10-19 handed over, fails in the background
    _produce(harness, 20)
    harness.run_until_idle()  # the retries go through the runtime's pause/retry
    harness.shutdown()
    assert writer.written == list(range(40))
    assert writer.offsets == {TopicPartition("dbserver1.public.products", 0): 40}
    assert harness.metric("cdc_retries_total", service="test-service") >= 1


def test_revoke_waits_for_the_write_in_flight() -> None:
    writer = FakeWriter()
    sink = _sink(writer)
    harness = SinkHarness(sink, EventDecoder(), strategy=CommitStrategy.SINK_MANAGED, batch_size=10)
    _produce(harness, 10)
    harness.poll()
    tp = TopicPartition("dbserver1.public.products", 0)
    harness.consumer.revoke([tp])
    harness.poll()
    assert writer.written == list(range(10))
    assert harness.committed == {tp: 10}
    harness.shutdown()


def test_a_partition_the_store_knows_nothing_of_starts_from_the_beginning() -> None:
    writer = FakeWriter()
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    writer.offsets = {a: 7}
    assert _sink(writer).stored_offsets([a, b]) == {a: 7, b: 0}
