"""A row's current state in the lake is its newest change by source position
(``cdc_events.source_version``), not the one with the highest Kafka offset.

A dead letter replayed with ``cdc dlq replay`` is the original bytes re-produced at a new,
higher offset: by offset, that older image would become the row's truth and the lake would
diverge from the source. The same holds for a snapshot read replayed after a streamed change of
a transaction that was open across the snapshot point (its change LSN is below the snapshot's,
so an order by LSN gets it wrong too). Parts written before the version column existed are
read with the old rule (Kafka offset) among themselves.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from analytics_flusher import Decoder, LakeSink, OrderChange, Part, WindowConfig, build_reports
from analytics_flusher.queries import DAILY_SALES, ORDER_STATUS_COUNTS, PRODUCT_SALES_BY_DAY, render
from consumer_runtime import CommitStrategy, InMemoryMessage
from consumer_runtime.testing import SinkHarness

MIN = 60_000
# Source positions of one history (LSNs as Debezium reports them):
SNAPSHOT_LSN = 5_000  # the snapshot's consistent point: every snapshot read carries it
OPEN_TX_LSN = 4_000  # a change of a transaction open across the snapshot point, commit 5_100
PAID_LSN, PAID_PREV_COMMIT = 5_200, 5_100  # a later transaction (its sequence names 5_100)
CANCEL_LSN, CANCEL_PREV_COMMIT = 5_400, 5_300


def query(root: Path, sql: str) -> list[tuple[Any, ...]]:
    relation = duckdb.sql(render(sql, str(root)))
    assert relation is not None
    return relation.fetchall()


def harness(store: Any) -> SinkHarness[Any]:
    sink = LakeSink(store, WindowConfig(window_ms=5 * MIN, grace_ms=MIN), idle_thread=False)
    return SinkHarness(sink, Decoder(), strategy=CommitStrategy.COMMIT_AFTER_FLUSH, batch_size=2)


def history(cdc: SimpleNamespace) -> SimpleNamespace:
    """Order 1 placed then cancelled, order 2 placed then paid, as streamed changes."""
    t = cdc.T0
    return SimpleNamespace(
        placed_1=cdc.order(1, total="10.00", ts=t, lsn=1_000),
        placed_2=cdc.order(2, total="20.00", customer=2, ts=t + 1_000, lsn=1_100),
        cancelled_1=cdc.order(
            1,
            "cancelled",
            op="u",
            ts=t + MIN,
            lsn=CANCEL_LSN,
            sequence=(CANCEL_PREV_COMMIT, CANCEL_LSN),
        ),
        items=[cdc.item(1, 1, 100, 1, "10.00", ts=t), cdc.item(2, 2, 101, 2, "10.00", ts=t)],
    )


def test_a_replayed_old_change_does_not_replace_the_newer_image_in_its_part(
    cdc: SimpleNamespace,
) -> None:
    h = history(cdc)
    decode = Decoder()
    part = Part(cdc.ORDERS, 0, cdc.T0, cdc.T0 + 5 * MIN, 0)
    # The placement, its cancellation, then the placement's bytes again at a higher offset.
    for offset, value in enumerate([h.placed_1, h.cancelled_1, h.placed_1]):
        change = decode(InMemoryMessage(cdc.ORDERS, 0, offset, None, value))
        assert isinstance(change, OrderChange)
        part.add(change, None, 0)
    image = part.images[1]
    assert isinstance(image, OrderChange)
    assert (image.status, image.offset) == ("cancelled", 1)
    assert part.changes[1] == 3 and part.last_offset == 2
    orders = build_reports(part, "reports", top_n=10)[0]
    assert orders.report == "orders"
    assert orders.columns["status"] == ["cancelled"]
    assert orders.columns["kafka_offset"] == [1]
    assert orders.columns["source_version"] == [image.version]
    # The PostgreSQL form of a streamed change: ``q``, the generation key (20 digits), class 2.
    assert image.version.startswith("q") and len(image.version) == 62
    assert image.version[21] == "2"


def test_a_stale_change_is_summarised_without_the_newer_image_as_its_previous_state(
    cdc: SimpleNamespace,
) -> None:
    # The cancellation arrives first (the payment before it was dead-lettered), then the
    # payment is replayed: the image stays cancelled, and the payment is booked as a change
    # from an unknown state (taken to be live), not as a revival of the cancelled order.
    decode = Decoder()
    cancelled = cdc.order(
        1,
        "cancelled",
        op="u",
        ts=cdc.T0 + MIN,
        lsn=CANCEL_LSN,
        sequence=(CANCEL_PREV_COMMIT, CANCEL_LSN),
    )
    paid = cdc.order(
        1, "paid", op="u", ts=cdc.T0, lsn=PAID_LSN, sequence=(PAID_PREV_COMMIT, PAID_LSN)
    )
    part = Part(cdc.ORDERS, 0, cdc.T0, cdc.T0 + 5 * MIN, 0)
    for offset, value in enumerate([cancelled, paid]):
        change = decode(InMemoryMessage(cdc.ORDERS, 0, offset, None, value))
        assert change is not None
        part.add(change, None, 0)
    image = part.images[1]
    assert isinstance(image, OrderChange) and image.status == "cancelled"
    assert part.transitions == {("(unknown)", "cancelled"): 1, ("(unknown)", "paid"): 1}
    net_orders = part.customers[(cdc.CREATED.date(), 1)][4]
    assert net_orders == -1, "the cancellation only: the replayed payment revives nothing"


@pytest.mark.parametrize("where", ["same part", "later window (late)", "after a restart"])
def test_a_replayed_dead_letter_does_not_become_the_current_state(
    cdc: SimpleNamespace, make_store: Any, tmp_path: Path, where: str
) -> None:
    h = history(cdc)
    store = make_store()
    first = harness(store)
    first.produce(cdc.ORDERS, [h.placed_1, h.placed_2, h.cancelled_1])
    first.produce(cdc.ITEMS, h.items)
    replay = [h.placed_1]  # `cdc dlq replay`: the same bytes, at a new (higher) offset
    if where == "same part":
        first.produce(cdc.ORDERS, replay)
    elif where == "later window (late)":
        # Time moved on: the replay's window is closed, so it is filed, late, under another.
        first.produce(cdc.ORDERS, [cdc.order(3, total="1.00", ts=cdc.T0 + 10 * MIN), *replay])
    first.run_until_idle()
    first.shutdown()
    if where == "after a restart":
        second = harness(store)
        second.consumer.committed.update(first.committed)
        second.produce(cdc.ORDERS, [h.placed_1, h.placed_2, h.cancelled_1, *replay])
        second.produce(cdc.ITEMS, h.items)
        second.run_until_idle()
        second.shutdown()
    root = store.dump(tmp_path)
    day = cdc.CREATED.date()
    extra = 1 if where == "later window (late)" else 0
    assert query(root, ORDER_STATUS_COUNTS) == [("cancelled", 1), ("pending", 1 + extra)]
    assert query(root, DAILY_SALES) == [
        (day, 1 + extra, Decimal("20.00") + extra * Decimal("1.00"))
    ]
    assert query(root, PRODUCT_SALES_BY_DAY) == [(day, 101, 2, Decimal("20.00"))]
    images = duckdb.sql(
        f"SELECT count(DISTINCT first_offset) FROM read_parquet('{root}/orders/**/*.parquet') "
        "WHERE order_id = 1"
    ).fetchall()
    assert images == [(1 if where == "same part" else 2,)], "the replay is in the lake too"


@pytest.mark.parametrize("restart", [False, True], ids=["same part", "after a restart"])
def test_a_streamed_change_below_the_snapshot_lsn_stays_current_after_a_replayed_read(
    cdc: SimpleNamespace, make_store: Any, tmp_path: Path, restart: bool
) -> None:
    t = cdc.T0
    # The snapshot read of order 2 (pending), then the first streamed change of it: a
    # transaction open across the snapshot point pays it with a change LSN *below* the
    # snapshot's (sequence [null, "4000"]). Then the snapshot read is replayed (higher offset).
    read = cdc.order(
        2,
        total="20.00",
        customer=2,
        op="r",
        ts=t,
        lsn=SNAPSHOT_LSN,
        sequence=(None, SNAPSHOT_LSN),
        snapshot="last",
    )
    paid = cdc.order(
        2,
        "paid",
        op="u",
        total="20.00",
        customer=2,
        ts=t + 1_000,
        lsn=OPEN_TX_LSN,
        sequence=(None, OPEN_TX_LSN),
    )
    line = cdc.item(2, 2, 101, 2, "10.00", ts=t, op="r", lsn=SNAPSHOT_LSN, snapshot="last")
    store = make_store()
    first = harness(store)
    first.produce(cdc.ORDERS, [read, paid] if restart else [read, paid, read])
    first.produce(cdc.ITEMS, [line])
    first.run_until_idle()
    first.shutdown()
    if restart:
        second = harness(store)
        second.consumer.committed.update(first.committed)
        second.produce(cdc.ORDERS, [read, paid, read])
        second.run_until_idle()
        second.shutdown()
    root = store.dump(tmp_path)
    assert query(root, ORDER_STATUS_COUNTS) == [("paid", 1)]
    assert query(root, DAILY_SALES) == [(cdc.CREATED.date(), 1, Decimal("20.00"))]
    # By LSN alone the read would be the newer (5000 > 4000): the class puts it first.
    decode = Decoder()
    read_change = decode(InMemoryMessage(cdc.ORDERS, 0, 0, None, read))
    paid_change = decode(InMemoryMessage(cdc.ORDERS, 0, 1, None, paid))
    assert isinstance(read_change, OrderChange) and isinstance(paid_change, OrderChange)
    assert read_change.version < paid_change.version


def _strip_version(path: Path) -> None:
    """Rewrite an object as the flusher wrote it before ``source_version`` existed."""
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["source_version"]), path)


def test_parts_without_a_version_are_ordered_by_offset_and_a_versioned_image_wins(
    cdc: SimpleNamespace, make_store: Any, tmp_path: Path
) -> None:
    h = history(cdc)
    store = make_store()
    # Written by the old code: placed (offsets 0, 1) and cancelled (offset 2) in two parts.
    old = harness(store)
    old.produce(cdc.ORDERS, [h.placed_1, h.placed_2])
    old.run_until_idle()
    old.shutdown()
    older = harness(store)
    older.consumer.committed.update(old.committed)
    older.produce(cdc.ORDERS, [h.placed_1, h.placed_2, h.cancelled_1])
    older.produce(cdc.ITEMS, h.items)
    older.run_until_idle()
    older.shutdown()
    root = store.dump(tmp_path / "lake")
    for path in (root / "orders").rglob("*.parquet"):
        _strip_version(path)
    # Old parts alone: the highest offset is the row's image (the rule they were written for).
    assert query(root, ORDER_STATUS_COUNTS) == [("cancelled", 1), ("pending", 1)]
    # A part written since (with versions) next to them: order 2 paid, in a later window.
    new_store = make_store()
    new = harness(new_store)
    new.consumer.committed.update(older.committed)
    new.produce(cdc.ORDERS, [h.placed_1, h.placed_2, h.cancelled_1])
    paid_2 = cdc.order(
        2,
        "paid",
        op="u",
        total="20.00",
        customer=2,
        ts=cdc.T0 + 20 * MIN,
        lsn=PAID_LSN,
        sequence=(PAID_PREV_COMMIT, PAID_LSN),
    )
    new.produce(cdc.ORDERS, [paid_2])
    new.run_until_idle()
    new.shutdown()
    assert [k for k in new_store.objects if "/orders/" in k], "the new part has images"
    new_store.dump(tmp_path / "lake")
    assert query(root, ORDER_STATUS_COUNTS) == [("cancelled", 1), ("paid", 1)]
    assert query(root, DAILY_SALES) == [(cdc.CREATED.date(), 1, Decimal("20.00"))]
