"""Background uploads: what the sink reports durable while objects are still being written,
what a failed upload does to the next batch, and the bound on queued uploads."""

from __future__ import annotations

import contextlib
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from analytics_flusher import Decoder, LakeSink, WindowConfig
from consumer_runtime import Batch, InMemoryMessage, RetryableError, TopicPartition

MIN = 60_000


class GatedStore:
    """Puts wait for ``gate``; ``fail`` makes them raise ``RetryableError`` instead."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.fail = False
        self.objects: dict[str, bytes] = {}
        self.started = threading.Semaphore(0)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.started.release()
        if self.fail:
            raise RetryableError("S3 unavailable (simulated)")
        assert self.gate.wait(30), "test gate never opened"
        self.objects[key] = body

    def healthy(self) -> bool:
        return not self.fail


def batch_of(cdc: SimpleNamespace, values: list[bytes], first_offset: int = 0) -> Batch[Any]:
    decode = Decoder()
    tp = TopicPartition(cdc.ORDERS, 0)
    batch: Batch[Any] = Batch()
    for i, value in enumerate(values, first_offset):
        batch.records.setdefault(tp, []).append(
            decode(InMemoryMessage(cdc.ORDERS, 0, i, None, value))
        )
    batch.next_offsets[tp] = first_offset + len(values)
    return batch


def closing_batches(cdc: SimpleNamespace) -> tuple[Batch[Any], Batch[Any]]:
    """Two orders in window 0; then one 10 minutes on, whose watermark closes window 0."""
    t = cdc.T0
    first = batch_of(cdc, [cdc.order(1, ts=t), cdc.order(2, ts=t + MIN)])
    second = batch_of(cdc, [cdc.order(3, ts=t + 10 * MIN)], first_offset=2)
    return first, second


def sink_for(store: Any, **kw: Any) -> LakeSink:
    return LakeSink(store, WindowConfig(window_ms=5 * MIN, grace_ms=MIN), **kw)


def test_nothing_is_reported_durable_past_a_part_still_uploading(cdc: SimpleNamespace) -> None:
    store = GatedStore()
    sink = sink_for(store, upload_concurrency=4)
    tp = TopicPartition(cdc.ORDERS, 0)
    first, second = closing_batches(cdc)
    assert sink.write_batch(first) == {tp: 0}
    # The second batch closes window 0 and returns at once, its objects still being written.
    assert sink.write_batch(second) == {tp: 0}
    assert sink.tick() == {tp: 0}
    assert sink.stats["parts"] == 0 and store.objects == {}
    store.gate.set()
    assert sink.settle(timeout=30)
    # Written: window 0 is retired and the durable offset moves to the open window's start.
    assert sink.tick() == {tp: 2}
    assert sink.stats["parts"] == 1 and store.objects
    sink.close()


def test_a_failed_upload_fails_the_next_batch_until_the_store_is_back(
    cdc: SimpleNamespace,
) -> None:
    store = GatedStore()
    store.fail = True
    sink = sink_for(store, upload_concurrency=4)
    tp = TopicPartition(cdc.ORDERS, 0)
    first, second = closing_batches(cdc)
    sink.write_batch(first)
    with contextlib.suppress(RetryableError):  # raised here if they failed fast enough
        sink.write_batch(second)  # uploads start and fail in the background
    assert sink.settle(timeout=30)
    # The runtime retries this batch: each try sends the objects again and waits for them, so
    # a store that stays down keeps the consumer here instead of reading on.
    for _ in range(2):
        with pytest.raises(RetryableError):
            sink.write_batch(second)
    assert not sink.healthy()
    store.fail = False
    store.gate.set()
    assert sink.write_batch(second) == {tp: 2}  # the retried batch: folded once only
    assert sink.stats["parts"] == 1
    assert sink.flush() == {tp: 3}
    assert sink.stats["parts"] == 2
    sink.close()


def test_queued_uploads_are_bounded(cdc: SimpleNamespace) -> None:
    store = GatedStore()
    sink = sink_for(store, upload_concurrency=2, max_inflight=2)
    first, second = closing_batches(cdc)
    sink.write_batch(first)
    returned = threading.Event()

    def closing() -> None:
        sink.write_batch(second)  # closes a part of several objects: more than 2 in flight
        returned.set()

    thread = threading.Thread(target=closing, daemon=True)
    thread.start()
    assert store.started.acquire(timeout=10)
    assert not returned.wait(0.5), "write_batch returned with more than max_inflight queued"
    store.gate.set()
    assert returned.wait(30)
    thread.join(5)
    sink.close()
