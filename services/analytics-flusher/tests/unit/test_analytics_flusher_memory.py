"""Open windows are bounded in bytes (``MAX_OPEN_BYTES``) across the process, not only in rows
per partition: a backlog of large rows forces parts out long before ``MAX_OPEN_ROWS``.

The shop's ``orders.status`` is the only text column the flusher keeps (its CHECK holds it to
a few characters); these tests give it ~100 KB, as a table without that check could.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest
from analytics_flusher import Decoder, FlusherSettings, LakeSink, WindowConfig
from consumer_runtime import Batch, CommitStrategy, InMemoryMessage, TopicPartition
from consumer_runtime.testing import SinkHarness

MIN = 60_000
BIG = 100_000  # bytes of status per row
BOUND = 1024 * 1024  # MAX_OPEN_BYTES of these tests: about ten such rows


def sink_for(store: Any, max_open_bytes: int = BOUND) -> LakeSink:
    # Every record of these tests is in one window that never closes on its own, and far
    # below the row cap: only the byte bound (or the shutdown) writes anything.
    cfg = WindowConfig(window_ms=5 * MIN, grace_ms=MIN, max_open_rows=200_000)
    return LakeSink(store, cfg, idle_thread=False, max_open_bytes=max_open_bytes)


def harness(sink: LakeSink) -> SinkHarness[Any]:
    return SinkHarness(sink, Decoder(), strategy=CommitStrategy.COMMIT_AFTER_FLUSH, batch_size=5)


def big_orders(cdc: SimpleNamespace, ids: range) -> list[bytes]:
    return [cdc.order(i, f"{i:06d}".ljust(BIG, "x"), ts=cdc.T0 + i) for i in ids]


def image_parts(root: Path) -> list[tuple[str, int, int]]:
    """(object, rows, status bytes) of every ``orders`` object."""
    relation = duckdb.sql(
        f"SELECT filename, count(*), sum(length(status)) "
        f"FROM read_parquet('{root}/orders/**/*.parquet', filename = true) "
        "GROUP BY filename ORDER BY filename"
    )
    assert relation is not None
    return [(str(f), int(n), int(b)) for f, n, b in relation.fetchall()]


def test_rows_of_100_kb_force_parts_by_bytes_before_the_row_cap(
    cdc: SimpleNamespace, store: Any, tmp_path: Path
) -> None:
    sink = sink_for(store)
    h = harness(sink)
    h.produce(cdc.ORDERS, big_orders(cdc, range(1, 41)))  # 4 MB of rows, 40 of 200,000
    h.run_until_idle()
    assert sink.settle(timeout=30)
    h.tick()
    # Parts were forced out while consuming: no window closed, no row cap was reached.
    written = image_parts(store.dump(tmp_path / "before"))
    assert len(written) >= 3, written
    assert sink.stats["byte_flushes"] >= 3
    assert h.committed[TopicPartition(cdc.ORDERS, 0)] > 0
    # What stays open is within the bound (plus the row that crossed it).
    assert sink.open_bytes() <= BOUND + BIG + 1_000
    h.shutdown()
    parts = image_parts(store.dump(tmp_path / "after"))
    assert sum(n for _, n, _ in parts) == 40
    assert all(b <= BOUND + BIG for _, _, b in parts), parts
    assert h.committed == {TopicPartition(cdc.ORDERS, 0): 40}
    assert h.dead_letters == []


def test_without_large_rows_the_bound_changes_nothing(
    cdc: SimpleNamespace, make_store: Any
) -> None:
    small = [cdc.order(i, ts=cdc.T0 + i) for i in range(1, 41)]
    results = []
    for bound in (BOUND, 1024**3):
        store = make_store()
        h = harness(sink_for(store, bound))
        h.produce(cdc.ORDERS, small)
        h.run_until_idle()
        h.shutdown()
        results.append(store.objects)
    assert results[0] == results[1] and len(results[0]) > 0


def test_the_bound_is_for_the_process_and_flushes_the_partition_holding_most(
    cdc: SimpleNamespace, store: Any
) -> None:
    sink = sink_for(store)
    h = harness(sink)
    # Partition 1 holds 6 large rows; partition 0 then brings the total past the bound.
    h.produce(cdc.ORDERS, big_orders(cdc, range(100, 106)), partition=1)
    h.run_until_idle()
    assert sink.stats["byte_flushes"] == 0
    h.produce(cdc.ORDERS, big_orders(cdc, range(1, 6)), partition=0)
    h.run_until_idle()
    assert sink.settle(timeout=30)
    h.tick()
    assert sink.stats["byte_flushes"] == 1
    orders = [k for k in store.objects if "/orders/" in k]
    assert len(orders) == 1 and "-1-000000000000-000000000005." in orders[0], orders
    # Each partition's share is what its open windows hold; the process total is the sum.
    assert h.committed == {
        TopicPartition(cdc.ORDERS, 1): 6,
        TopicPartition(cdc.ORDERS, 0): 0,
    }
    h.shutdown()


def test_the_estimate_is_released_when_windows_close_or_partitions_go(
    cdc: SimpleNamespace, store: Any
) -> None:
    sink = sink_for(store, 1024**3)
    h = harness(sink)
    h.produce(cdc.ORDERS, big_orders(cdc, range(1, 4)), partition=0)
    h.produce(cdc.ORDERS, big_orders(cdc, range(4, 7)), partition=1)
    h.run_until_idle()
    held = sink.open_bytes()
    assert 6 * BIG < held < 6 * (BIG + 2_000)
    h.consumer.lose([TopicPartition(cdc.ORDERS, 1)])
    h.poll()
    assert sink.open_bytes() == held // 2  # the two partitions hold the same
    h.consumer.revoke([TopicPartition(cdc.ORDERS, 0)])
    h.poll()
    assert sink.open_bytes() == 0
    h.shutdown()


class GatedStore:
    """Puts wait until ``gate`` opens."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, body: bytes, content_type: str) -> None:
        assert self.gate.wait(30), "test gate never opened"
        self.objects[key] = body

    def healthy(self) -> bool:
        return True


def test_the_consumer_waits_while_closed_parts_uploading_hold_more_than_the_bound(
    cdc: SimpleNamespace,
) -> None:
    store = GatedStore()
    sink = sink_for(store)  # 8 upload threads, 64 objects in flight: far from the object cap
    decode = Decoder()
    tp = TopicPartition(cdc.ORDERS, 0)
    batch: Batch[Any] = Batch()
    for offset, value in enumerate(big_orders(cdc, range(1, 14))):  # past the bound once
        batch.records.setdefault(tp, []).append(
            decode(InMemoryMessage(cdc.ORDERS, 0, offset, None, value))
        )
    batch.next_offsets[tp] = 13
    returned = threading.Event()
    thread = threading.Thread(target=lambda: (sink.write_batch(batch), returned.set()))
    thread.start()
    assert not returned.wait(0.5), "write_batch returned with more than the bound uploading"
    store.gate.set()
    assert returned.wait(30)
    thread.join(5)
    assert sink.stats["byte_flushes"] == 1
    sink.close()


def test_max_open_bytes_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    assert FlusherSettings().max_open_bytes == 32 * 1024 * 1024
    monkeypatch.setenv("MAX_OPEN_BYTES", "1048576")
    assert FlusherSettings().max_open_bytes == 1024 * 1024
