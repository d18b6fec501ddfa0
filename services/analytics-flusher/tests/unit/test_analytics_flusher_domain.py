"""Decoding and windowing, without the runtime."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from analytics_flusher import (
    SCHEMAS,
    Decoder,
    ItemChange,
    OrderChange,
    Part,
    PartitionWindows,
    WindowConfig,
    build_reports,
    encode_parquet,
    object_key,
)
from cdc_events import ParseError
from cdc_events.testing import golden, make_heartbeat, make_tombstone
from consumer_runtime import InMemoryMessage

MIN = 60_000
NOW = 1_767_225_600_000  # the processing clock of the tests below (2026-01-01T00:00:00Z)


def msg(topic: str, value: bytes | None, offset: int = 0, partition: int = 0) -> InMemoryMessage:
    return InMemoryMessage(topic, partition, offset, None, value)


def test_decodes_orders_and_items(cdc: SimpleNamespace) -> None:
    decode = Decoder()
    change = decode(msg(cdc.ORDERS, cdc.order(7, "paid", op="u", total="12.50"), offset=3))
    assert isinstance(change, OrderChange)
    assert (change.order_id, change.status, change.total, change.offset) == (
        7,
        "paid",
        Decimal("12.50"),
        3,
    )
    assert change.order_day == date(2026, 1, 1)
    assert change.source_ts_ms == cdc.T0
    line = decode(msg(cdc.ITEMS, cdc.item(1, 7, 42, 3, "2.10")))
    assert isinstance(line, ItemChange)
    assert (line.product_id, line.quantity, line.revenue) == (42, 3, Decimal("6.30"))
    gone = decode(msg(cdc.ORDERS, cdc.order(7, op="d")))
    assert isinstance(gone, OrderChange)
    assert gone.deleted and gone.status is None


def test_skips_side_records_and_other_tables(cdc: SimpleNamespace) -> None:
    decode = Decoder()
    tomb = make_tombstone(table="orders", key={"id": 1})
    assert decode(msg(tomb.topic, tomb.value)) is None
    beat = make_heartbeat()
    assert decode(msg(beat.topic, beat.value)) is None
    products = golden("pg-schema-products-c")
    assert decode(msg(products.topic, products.value)) is None


def test_golden_orders_records_decode() -> None:
    decode = Decoder()
    for name in ("pg-schema-orders-c", "pg-schema-orders-u", "pg-noschema-orders-c"):
        rec = golden(name)
        change = decode(msg(rec.topic, rec.value))
        assert isinstance(change, OrderChange), name
        assert change.created_at is not None and change.total is not None, name


def test_garbage_is_a_parse_error(cdc: SimpleNamespace) -> None:
    with pytest.raises(ParseError):
        Decoder()(msg(cdc.ORDERS, b"not json"))


def change(oid: int, ts: int, offset: int, status: str = "pending", op: str = "c") -> OrderChange:
    return OrderChange(
        order_id=oid,
        customer_id=1,
        status=status,
        total=Decimal("10.00"),
        created_at=None,
        deleted=False,
        op=op,
        source_ts_ms=ts,
        offset=offset,
        version=f"p1{offset:020d}{offset:020d}",  # in the order of the offsets
        event_id=f"e{offset}",
    )


def test_watermark_closes_windows_and_late_records_are_filed_under_the_current_one() -> None:
    cfg = WindowConfig(window_ms=5 * MIN, grace_ms=1 * MIN)
    state = PartitionWindows("t", 0, cfg)
    closed: list[Part] = []
    state.add(change(1, 0, 0), closed, NOW)
    state.add(change(2, 4 * MIN, 1), closed, NOW)
    state.add(change(3, 5 * MIN, 2), closed, NOW)  # second window opens; watermark 4 min
    assert closed == [] and sorted(state.open) == [0, 5 * MIN]
    assert state.durable() == 0
    state.add(change(4, 6 * MIN, 3), closed, NOW)  # watermark 5 min: first window closes
    assert [p.window_start for p in closed] == [0]
    assert (closed[0].first_offset, closed[0].last_offset) == (0, 1)
    assert state.durable() == 2
    state.add(change(5, 1 * MIN, 4), closed, NOW)  # its window is closed: late
    part = state.open[5 * MIN]
    assert 5 in part.late_ids and part.late[0].count == 1
    assert part.late[0].max_lateness_ms == 0  # watermark 5 min = window end 5 min


def test_caps_force_a_flush() -> None:
    state = PartitionWindows(
        "t", 0, WindowConfig(window_ms=MIN, grace_ms=100 * MIN, max_open_windows=2)
    )
    closed: list[Part] = []
    for i in range(3):
        state.add(change(i, i * MIN, i), closed, NOW)
    assert [p.window_start for p in closed] == [0]
    rows = PartitionWindows("t", 0, WindowConfig(max_open_rows=3))
    closed = []
    for i in range(4):
        rows.add(change(i, 0, i), closed, NOW)
    assert len(closed) == 1 and rows.open == {} and rows.durable() == 4


def test_retried_batch_is_not_folded_twice() -> None:
    state = PartitionWindows("t", 0, WindowConfig())
    closed: list[Part] = []
    state.add(change(1, 0, 0), closed, NOW)
    state.advance(1)
    state.add(change(1, 0, 0), closed, NOW)
    assert state.open[0].events == 1


def test_signed_sales_deltas_inside_a_part() -> None:
    part = Part("t", 0, 0, 5 * MIN, 0)
    part.add(change(1, 0, 0), None, 0)
    part.add(change(2, 0, 1), None, 0)
    part.add(change(1, 0, 2, status="paid", op="u"), None, 0)
    part.add(change(2, 0, 3, status="cancelled", op="u"), None, 0)
    part.add(change(3, 0, 4, status="cancelled", op="u"), None, 0)  # placed in an earlier part
    part.add(change(3, 0, 4, status="cancelled", op="u"), None, 0)  # a re-emit: ignored
    acc = part.customers[(None, 1)]
    assert acc == [2, Decimal("20.00"), 2, Decimal("20.00"), 0, Decimal("0.00")]
    assert part.transitions == {
        ("(new)", "pending"): 2,
        ("pending", "paid"): 1,
        ("pending", "cancelled"): 1,
        ("(unknown)", "cancelled"): 1,
    }


def test_reports_keys_and_schemas(cdc: SimpleNamespace) -> None:
    decode = Decoder()
    part = Part(cdc.ORDERS, 2, cdc.T0, cdc.T0 + 5 * MIN, 7)
    for i, value in enumerate([cdc.order(1), cdc.order(2, customer=3, total="5.00")]):
        c = decode(msg(cdc.ORDERS, value, offset=7 + i))
        assert c is not None
        part.add(c, None, 0)
    tables = build_reports(part, "reports", top_n=1)
    assert [t.report for t in tables] == [
        "orders",
        "sales",
        "customer_metrics",
        "order_status",
        "status_transitions",
        "top_customers",
    ]
    assert object_key("reports", "sales", part) == (
        "reports/sales/dt=2026-01-01/hour=00/window=20260101T000000Z/"
        "part-dbserver1.public.orders-2-000000000007-000000000008"
    )
    for table in tables:
        first = encode_parquet(table)
        assert first == encode_parquet(table), table.report  # byte-identical re-encoding
        assert table.report in SCHEMAS
    top = next(t for t in tables if t.report == "top_customers")
    assert top.columns["customer_id"] == [1] and top.num_rows == 1


FAR = 4_070_908_800_000  # 2099-01-01T00:00:00Z: a source clock (or a ts_ms) gone wrong


def test_a_far_future_change_neither_closes_windows_nor_makes_later_changes_late() -> None:
    cfg = WindowConfig(window_ms=5 * MIN, grace_ms=MIN, max_clock_skew_ms=MIN)
    state = PartitionWindows("t", 0, cfg)
    closed: list[Part] = []
    current = NOW + 10 * MIN  # the window the processing clock is in
    now = current + 2 * MIN + MIN // 2  # 2.5 minutes into it
    assert not state.add(change(1, now - 6 * MIN, 0), closed, now)
    assert not state.add(change(2, now - MIN, 1), closed, now)
    assert not state.add(change(3, now - MIN // 2, 2), closed, now)
    assert [p.window_start for p in closed] == [current - 5 * MIN]  # the watermark's due close
    assert state.add(change(4, FAR, 3), closed, now)  # ahead of the clock by 73 years
    # The watermark did not move: only changes within the clock's reach move it.
    assert state.watermark == now - MIN // 2 - MIN
    assert [p.window_start for p in closed] == [current - 5 * MIN]
    assert sorted(state.open) == [current, cfg.window_of(FAR)]
    far = state.open[cfg.window_of(FAR)]  # counted in its own window, not as late
    assert (far.events, far.late, far.late_ids) == (1, {}, set())
    assert not state.add(change(5, now + 10_000, 4), closed, now + 10_000)
    assert not state.add(change(6, now + 20_000, 5), closed, now + 20_000)
    part = state.open[current]
    assert part.events == 4 and part.late == {}, "changes after it are on time"
    # A change from 1970 is just late: filed under the current window, nothing closed or opened.
    assert not state.add(change(7, 0, 6), closed, now + 30_000)
    assert sorted(state.open) == [current, cfg.window_of(FAR)]
    assert part.late_ids == {7} and part.late[0].count == 1
    assert len(closed) == 1
    # When the watermark closes the current window, the 2099 part goes with it: it would not
    # hold the partition's commits back for 73 years.
    later = current + 6 * MIN + 1
    assert state.durable() == 1
    assert not state.add(change(8, later, 7), closed, later)
    assert [p.window_start for p in closed[1:]] == [current, cfg.window_of(FAR)]
    assert [p.events for p in closed[1:]] == [5, 1]
    assert state.durable() == 7 and sorted(state.open) == [current + 5 * MIN]


def test_a_far_future_change_during_a_backlog_makes_no_backlogged_change_late() -> None:
    # The lake works off a backlog: its records were committed 20 minutes before the processing
    # clock. A 2099 change in it must not move the watermark to the clock (now + skew): the
    # backlogged changes after it would all be late. It moves nothing; the backlog's own event
    # times close its windows.
    cfg = WindowConfig(window_ms=5 * MIN, grace_ms=MIN, max_clock_skew_ms=MIN)
    state = PartitionWindows("t", 0, cfg)
    closed: list[Part] = []
    now = NOW + 30 * MIN
    behind = NOW + 10 * MIN  # the start of the window the backlog is in
    assert not state.add(change(1, behind, 0), closed, now)
    assert state.add(change(2, FAR, 1), closed, now)
    assert state.watermark == behind - MIN, "the far-future change moved the watermark"
    for i in range(3, 13):  # 30 s apart: 4.5 minutes of backlog, all in window `behind`
        assert not state.add(change(i, behind + (i - 3) * 30_000, i - 1), closed, now)
    assert closed == []
    part = state.open[behind]
    assert (part.events, part.late, part.late_ids) == (11, {}, set())
    # The backlog's own time closes its window, and the 2099 part with it.
    assert not state.add(change(13, behind + 6 * MIN + 1, 12), closed, now)
    assert [p.window_start for p in closed] == [behind, cfg.window_of(FAR)]
    assert [(p.events, p.late) for p in closed] == [(11, {}), (1, {})]


def test_a_partition_that_starts_ahead_of_the_clock_has_no_watermark_until_on_time() -> None:
    cfg = WindowConfig(window_ms=5 * MIN, grace_ms=MIN, max_clock_skew_ms=MIN)
    state = PartitionWindows("t", 0, cfg)
    closed: list[Part] = []
    now = NOW + 30 * MIN
    assert state.add(change(1, FAR, 0), closed, now)
    assert state.watermark is None
    assert not state.add(change(2, NOW, 1), closed, now)  # 30 minutes behind: not late
    assert state.open[NOW].late == {} and closed == []
    assert state.watermark == NOW - MIN


def test_bogus_event_times_keep_windows_and_memory_bounded() -> None:
    # Changes stamped anywhere in the range the parser accepts (year 1 to 9999), mixed with
    # on-time ones: no more open windows than the cap, every closed part can be written, and
    # no change whose window has not ended on the processing clock is late (with the skew at
    # most the grace, no watermark passes the clock).
    import random

    from analytics_flusher._reports import window_summary

    rng = random.Random(7)
    cfg = WindowConfig(window_ms=5 * MIN, grace_ms=MIN, max_open_windows=4)
    state = PartitionWindows("t", 0, cfg)
    closed: list[Part] = []
    extremes = [-62_135_596_800_000, 253_402_300_799_999, 0, FAR]
    on_time: set[int] = set()
    for i in range(2_000):
        now = NOW + i * 1_000
        if i % 3 == 0:
            ts = extremes[i % 4] if i < 12 else rng.randrange(-62_135_596_800_000, 2**47)
        else:
            ts = now
            on_time.add(i)
        state.add(change(i, ts, i), closed, now)
        assert len(state.open) <= cfg.max_open_windows
    state.close_all(closed)
    assert sum(p.events for p in closed) == 2_000
    late = {ident for p in closed for ident in p.late_ids}
    assert not late & on_time
    for part in closed:
        tables = build_reports(part, "reports", top_n=3)
        window_summary(part, tables)
        for table in tables:
            encode_parquet(table)
        object_key("reports", "orders", part)
