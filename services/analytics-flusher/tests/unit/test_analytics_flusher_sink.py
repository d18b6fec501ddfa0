"""The sink through the real consumer loop (SinkHarness) over in-memory messages."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest
from analytics_flusher import Decoder, LakeSink, WindowConfig
from analytics_flusher.queries import (
    DAILY_SALES,
    ORDER_STATUS_COUNTS,
    PRODUCT_SALES_BY_DAY,
    SALES_SUMMARY_SUM,
    TOP_PRODUCTS,
    render,
)
from consumer_runtime import CommitStrategy, TopicPartition
from consumer_runtime.testing import SinkHarness

MIN = 60_000


def make_sink(store: Any, **kw: Any) -> LakeSink:
    cfg = WindowConfig(window_ms=5 * MIN, grace_ms=MIN, max_open_windows=kw.pop("cap", 12))
    return LakeSink(store, cfg, idle_thread=False, **kw)


def harness(sink: LakeSink, batch_size: int = 500) -> SinkHarness[Any]:
    return SinkHarness(
        sink, Decoder(), strategy=CommitStrategy.COMMIT_AFTER_FLUSH, batch_size=batch_size
    )


def workload(cdc: SimpleNamespace) -> tuple[list[bytes], list[bytes]]:
    """Orders over three windows: placed, paid, one cancelled in a later window."""
    t = cdc.T0
    orders = [
        cdc.order(1, total="10.00", ts=t),
        cdc.order(2, total="20.00", customer=2, ts=t + MIN),
        cdc.order(1, "paid", op="u", total="10.00", ts=t + 2 * MIN),
        cdc.order(3, total="7.00", ts=t + 6 * MIN),
        cdc.order(2, "cancelled", op="u", total="20.00", customer=2, ts=t + 12 * MIN),
        cdc.order(4, total="1.00", ts=t + 13 * MIN),
    ]
    items = [
        cdc.item(1, 1, 100, 2, "5.00", ts=t),
        cdc.item(2, 2, 101, 1, "20.00", ts=t + MIN),
        cdc.item(3, 3, 100, 1, "7.00", ts=t + 6 * MIN),
        cdc.item(4, 4, 102, 1, "1.00", ts=t + 13 * MIN),
    ]
    return orders, items


def query(root: Path, sql: str) -> list[tuple[Any, ...]]:
    return duckdb.sql(render(sql, str(root))).fetchall()


def test_totals_from_objects_and_commits(cdc: SimpleNamespace, store: Any, tmp_path: Path) -> None:
    sink = make_sink(store)
    h = harness(sink, batch_size=2)
    orders, items = workload(cdc)
    h.produce(cdc.ORDERS, orders)
    h.produce(cdc.ITEMS, items)
    h.run_until_idle()
    orders_tp = TopicPartition(cdc.ORDERS, 0)
    # Uploads run in the background: nothing is committed past a part still being written.
    assert h.committed.get(orders_tp, 0) <= 4
    assert sink.settle(timeout=30)
    h.loop.tick()  # the runtime's wall-clock turn retires the written parts and commits
    # Windows 0 and 5 closed by the watermark (13 min - 1 min grace); window 10 is open from
    # offset 4 (the cancellation), so that is how far the commit goes.
    assert h.committed[orders_tp] == 4
    h.shutdown()
    assert h.committed == {orders_tp: 6, TopicPartition(cdc.ITEMS, 0): 4}
    root = store.dump(tmp_path)
    day = cdc.CREATED.date()
    assert query(root, DAILY_SALES) == [(day, 3, Decimal("18.00"))]
    assert query(root, ORDER_STATUS_COUNTS) == [("cancelled", 1), ("paid", 1), ("pending", 2)]
    assert query(root, PRODUCT_SALES_BY_DAY) == [
        (day, 100, 3, Decimal("17.00")),
        (day, 102, 1, Decimal("1.00")),
    ]
    assert query(root, TOP_PRODUCTS)[0] == (100, 3, Decimal("17.00"))
    # The signed summaries add up too when every change was written once.
    assert query(root, SALES_SUMMARY_SUM) == [(day, 3, Decimal("18.00"))]
    keys = sorted(store.objects)
    assert any("/sales/dt=2026-01-01/hour=00/window=20260101T001000Z/" in k for k in keys)


def test_s3_outage_is_retried_without_double_counting(
    cdc: SimpleNamespace, store: Any, tmp_path: Path
) -> None:
    # Uploads inline: the failures are seen by the batch that closed the parts (in the
    # background they are seen by whichever call comes after them).
    sink = make_sink(store, upload_concurrency=1)
    h = harness(sink, batch_size=3)
    orders, _ = workload(cdc)
    h.produce(cdc.ORDERS, orders)
    store.fail_next(3)
    h.run_until_idle()
    h.shutdown()
    assert h.metric("cdc_retries_total", service="test-service") >= 1
    root = store.dump(tmp_path)
    assert query(root, SALES_SUMMARY_SUM) == [(cdc.CREATED.date(), 3, Decimal("18.00"))]


def test_replay_after_a_crash_rewrites_identical_objects(
    cdc: SimpleNamespace, store: Any, tmp_path: Path
) -> None:
    orders, items = workload(cdc)
    first_sink = make_sink(store)
    first = harness(first_sink, batch_size=2)
    first.produce(cdc.ORDERS, orders)
    first.produce(cdc.ITEMS, items)
    first.run_until_idle()  # then "SIGKILL": open windows lost, nothing more committed
    assert first_sink.settle(timeout=30)  # (uploads in flight at the kill: let them land)
    written_before = dict(store.objects)
    second = harness(make_sink(store), batch_size=5)
    second.consumer.committed.update(first.committed)
    second.produce(cdc.ORDERS, orders)
    second.produce(cdc.ITEMS, items)
    second.run_until_idle()
    second.shutdown()
    rewritten = {k for k, _ in store.puts[len(written_before) :]} & set(written_before)
    for key in rewritten:
        assert store.objects[key] == written_before[key], key
    root = store.dump(tmp_path)
    assert query(root, DAILY_SALES) == [(cdc.CREATED.date(), 3, Decimal("18.00"))]


def test_revoke_flushes_and_lost_drops(cdc: SimpleNamespace, store: Any) -> None:
    sink = make_sink(store)
    h = harness(sink)
    orders, items = workload(cdc)
    h.produce(cdc.ORDERS, orders[:2])
    h.produce(cdc.ITEMS, items[:2])
    h.run_until_idle()
    assert set(h.committed.values()) == {0}  # windows open: nothing durable yet
    h.consumer.revoke([TopicPartition(cdc.ORDERS, 0)])
    h.poll()
    assert h.committed[TopicPartition(cdc.ORDERS, 0)] == 2
    assert any("/orders/" in k for k in store.objects)
    h.consumer.lose([TopicPartition(cdc.ITEMS, 0)])
    h.poll()
    assert not any("/order_items/" in k for k in store.objects)
    assert h.committed[TopicPartition(cdc.ITEMS, 0)] == 0


def test_idle_partitions_are_flushed(cdc: SimpleNamespace, store: Any) -> None:
    now = [0.0]
    sink = make_sink(store, idle_flush_s=30.0, clock=lambda: now[0])
    h = harness(sink)
    h.produce(cdc.ORDERS, [cdc.order(1)])
    h.run_until_idle()
    assert sink.flush_idle() == 0 and store.objects == {}
    now[0] = 31.0
    assert sink.flush_idle() == 1
    assert any("/orders/" in k for k in store.objects)
    # The next batch reports the idle flush as durable: the commit moves on.
    h.produce(cdc.ORDERS, [cdc.order(2, ts=cdc.T0 + 1)])
    h.run_until_idle()
    assert h.committed == {TopicPartition(cdc.ORDERS, 0): 1}


def test_the_runtime_tick_writes_and_commits_an_idle_window(
    cdc: SimpleNamespace, store: Any
) -> None:
    now = [0.0]
    sink = make_sink(store, idle_flush_s=30.0, clock=lambda: now[0])
    h = harness(sink)
    h.produce(cdc.ORDERS, [cdc.order(1)])
    h.run_until_idle()
    h.tick()
    assert store.objects == {}, "not idle yet: nothing written"
    assert h.committed.get(TopicPartition(cdc.ORDERS, 0), 0) == 0, "nothing past the window"
    now[0] = 31.0
    h.tick()  # no new record: the tick alone writes the window and commits it
    assert any("/orders/" in k for k in store.objects)
    assert h.committed == {TopicPartition(cdc.ORDERS, 0): 1}


@pytest.mark.parametrize("batch_size", [1, 4, 500])
def test_batch_boundaries_do_not_change_objects(
    cdc: SimpleNamespace, make_store: Any, batch_size: int
) -> None:
    orders, items = workload(cdc)
    results = []
    for size in (batch_size, 3):
        store = make_store()
        h = harness(make_sink(store), batch_size=size)
        h.produce(cdc.ORDERS, orders)
        h.produce(cdc.ITEMS, items)
        h.run_until_idle()
        h.shutdown()
        results.append(store.objects)
    assert results[0] == results[1]


def test_a_far_future_record_is_counted_in_its_own_window_and_holds_nothing_back(
    cdc: SimpleNamespace, store: Any, tmp_path: Path
) -> None:
    far = 4_070_908_800_000  # 2099-01-01T00:00:00Z
    t = cdc.T0
    clock = [(t + 2 * MIN + MIN // 2) / 1000]  # the processing clock, 2.5 min into window t
    sink = make_sink(store, wall_clock=lambda: clock[0])
    h = harness(sink)
    h.produce(
        cdc.ORDERS,
        [
            cdc.order(1, ts=t + MIN),
            cdc.order(2, ts=far),  # a source clock gone wrong
            cdc.order(3, ts=t + 2 * MIN),
            cdc.order(4, ts=0),  # 1970: late, nothing more
        ],
    )
    h.run_until_idle()
    assert sink.settle(timeout=30)
    h.tick()
    skewed = {"service": "analytics-flusher", "topic": cdc.ORDERS}
    assert sink.metrics_registry.get_sample_value("lake_clock_skewed_records_total", skewed) == 1
    assert store.objects == {}, "window t is still open: the 2099 record closed nothing"
    clock[0] = (t + 7 * MIN) / 1000
    h.produce(cdc.ORDERS, [cdc.order(5, ts=t + 7 * MIN)])  # its watermark closes window t ...
    h.run_until_idle()
    assert sink.settle(timeout=30)
    h.tick()
    # ... and the 2099 part with it, so the commit moves past the 2099 record.
    assert h.committed == {TopicPartition(cdc.ORDERS, 0): 4}
    h.shutdown()
    root = store.dump(tmp_path)
    assert query(root, DAILY_SALES) == [(cdc.CREATED.date(), 5, Decimal("50.00"))]
    images = duckdb.sql(
        f"SELECT order_id, strftime(window_start, '%Y-%m-%d %H:%M'), late "
        f"FROM read_parquet('{root}/orders/**/*.parquet') ORDER BY order_id"
    ).fetchall()
    assert images == [
        (1, "2026-01-01 00:00", False),
        (2, "2099-01-01 00:00", False),  # counted in its own window
        (3, "2026-01-01 00:00", False),  # not late
        (4, "2026-01-01 00:00", True),  # late, filed under the current window
        (5, "2026-01-01 00:05", False),
    ]
    late = duckdb.sql(
        f"SELECT epoch_ms(event_window_start), late_events "
        f"FROM read_parquet('{root}/late/**/*.parquet')"
    ).fetchall()
    assert late == [(0, 1)]
