"""``WriteBehind`` in the real consumer loop (``SinkHarness``) over an in-memory sink: a batch's
offsets are committed only once its background write returned, a transient failure is written
again before anything newer, a refusal is isolated in the batch it belongs to, and a revoke or
the shutdown waits for the write in flight."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import orjson
import pytest
from consumer_runtime import (
    BaseSink,
    Batch,
    Offsets,
    RejectedError,
    RetryableError,
    TopicPartition,
    WriteBehind,
)
from consumer_runtime.testing import SinkHarness

pytestmark = pytest.mark.unit

TP0 = TopicPartition("orders", 0)
Record = dict[str, object]


def decode(message: object) -> Record:
    return orjson.loads(message.value())  # type: ignore[attr-defined,no-any-return]


def values(n: int, start: int = 0) -> list[bytes | None]:
    return [orjson.dumps({"id": i}) for i in range(start, start + n)]


class SlowSink(BaseSink[Record]):
    """Writes on the caller's thread; ``gate`` holds each write until the test releases it."""

    def __init__(self) -> None:
        self.written: list[object] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.fail_next = 0
        self.refuse: set[object] = set()
        self.revoked: list[list[TopicPartition]] = []
        self.closed = False

    def write_batch(self, batch: Batch[Record]) -> Offsets | None:
        self.threads.add(threading.current_thread().name)
        assert self.gate.wait(10)
        if self.fail_next:
            self.fail_next -= 1
            raise RetryableError("store down")
        refused = [r["id"] for r in batch if r["id"] in self.refuse]
        if refused:
            raise RejectedError(f"refused {refused}")
        self.written.extend(r["id"] for r in batch)
        return None

    def on_revoke(self, partitions: Sequence[TopicPartition]) -> Offsets | None:
        self.revoked.append(list(partitions))
        return None

    def close(self) -> None:
        self.closed = True


def test_a_batch_is_committed_only_once_its_background_write_returned() -> None:
    inner = SlowSink()
    harness = SinkHarness(WriteBehind(inner), decode, batch_size=5)
    harness.produce("orders", values(10))
    inner.gate.clear()  # the writes wait
    assert harness.poll() == 5  # handed to the background: write_batch returned at once
    assert harness.committed.get(TP0, 0) == 0 and inner.written == []
    inner.gate.set()
    assert harness.poll() == 5  # waits for the first batch, then reports it durable
    assert harness.committed == {TP0: 5}
    assert inner.threads == {"write-behind_0"}
    harness.tick()  # the second batch's write has finished meanwhile (or is waited for)
    harness.shutdown()
    assert harness.committed == {TP0: 10} and inner.written == list(range(10))
    assert inner.closed


def test_a_tick_reports_a_finished_write_without_waiting_for_a_new_batch() -> None:
    inner = SlowSink()
    harness = SinkHarness(WriteBehind(inner), decode, batch_size=5)
    harness.produce("orders", values(5))
    harness.run_until_idle()
    for _ in range(200):  # the background write finishes on its own
        harness.tick()
        if harness.committed.get(TP0) == 5:
            break
        threading.Event().wait(0.01)
    assert harness.committed == {TP0: 5}
    harness.shutdown()


def test_a_finished_write_is_committed_on_the_next_poll_when_nothing_new_arrives() -> None:
    """A quiet stream's last batch is reported durable by the first poll after its write
    returned, not by the sink's next wall-clock tick (a second later by default): its
    end-to-end latency and its commit do not wait for the clock."""
    inner = SlowSink()
    harness = SinkHarness(WriteBehind(inner), decode, batch_size=5)  # ticks never come
    harness.produce("orders", values(5))
    assert harness.poll() == 5
    for _ in range(1000):  # polls that bring nothing new, while the write finishes on its own
        assert harness.poll() == 0
        if harness.committed.get(TP0) == 5:
            break
        threading.Event().wait(0.01)
    assert harness.committed == {TP0: 5} and inner.written == list(range(5))
    harness.shutdown()


def test_a_transient_failure_in_the_background_is_written_again_before_anything_newer() -> None:
    inner = SlowSink()
    inner.fail_next = 2  # the first batch's background write, then its first rewrite
    harness = SinkHarness(WriteBehind(inner), decode, batch_size=5)
    harness.produce("orders", values(15))
    harness.run_until_idle()
    harness.shutdown()
    assert inner.written == list(range(15))  # in order, each once
    assert harness.committed == {TP0: 15}
    assert harness.dead_letters == []


def test_a_refusal_in_the_background_is_isolated_in_the_batch_it_belongs_to() -> None:
    inner = SlowSink()
    inner.refuse = {3}
    harness = SinkHarness(WriteBehind(inner), decode, batch_size=5)
    harness.produce("orders", values(12))
    harness.run_until_idle()
    harness.shutdown()
    assert sorted(inner.written) == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]
    assert [(d.offset, d.code) for d in harness.dead_letters] == [(3, "store_rejected")]
    assert harness.committed == {TP0: 12}


def test_a_revoke_waits_for_the_write_in_flight_and_commits_it() -> None:
    inner = SlowSink()
    harness = SinkHarness(WriteBehind(inner), decode, batch_size=5)
    harness.produce("orders", values(5))
    inner.gate.clear()
    assert harness.poll() == 5
    releaser = threading.Timer(0.2, inner.gate.set)
    releaser.start()
    harness.loop.on_revoke([TP0])  # what a rebalance does: blocks until the write returned
    releaser.join()
    assert inner.written == list(range(5)) and inner.revoked == [[TP0]]
    assert harness.committed == {TP0: 5}
    harness.shutdown()


def test_a_lost_partition_is_dropped_from_a_batch_still_to_be_written() -> None:
    """Its write failed in the background and the partition was lost meanwhile (another
    member owns it): the batch is not written again for it, and nothing is committed."""
    inner = SlowSink()
    inner.fail_next = 1
    harness = SinkHarness(WriteBehind(inner), decode, batch_size=5)
    harness.produce("orders", values(5))
    assert harness.poll() == 5
    harness.loop.on_lost([TP0])
    harness.shutdown()  # a flush would write the batch again if it had been kept
    assert inner.written == []
    assert harness.committed == {}
