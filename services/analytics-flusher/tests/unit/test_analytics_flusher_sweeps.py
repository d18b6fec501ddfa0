"""Sweeps: deletes lost across a Debezium re-snapshot, recorded in the lake and applied when
the current state is queried.

When Debezium loses its offsets it snapshots again; rows deleted while it had none reach Kafka
not at all (a snapshot emits no deletes). The last read of a table in a snapshot carries
``cdc_events.sweep_version`` S: every row of that table whose newest image is below S was
neither read by that snapshot nor changed after it, so it is gone from the source. The part the
marker lands in records (table, S) in its image report; the current-state queries treat such
rows as deleted. Per-window summaries are history and stay as written.
"""

from __future__ import annotations

import io
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from analytics_flusher import (
    Decoder,
    LakeSink,
    OrderChange,
    Part,
    WindowConfig,
    build_reports,
    encode_parquet,
    queries,
)
from analytics_flusher.queries import (
    DAILY_SALES,
    ORDER_STATUS_COUNTS,
    PRODUCT_SALES_BY_DAY,
    render,
)
from consumer_runtime import CommitStrategy, InMemoryMessage, TopicPartition
from consumer_runtime.testing import SinkHarness
from structlog.testing import capture_logs

MIN = 60_000
FIRST_POINT = 1_000  # the first snapshot's consistent point (LSN)
SECOND_POINT = 5_000  # the second snapshot's, after Debezium lost its offsets
# The second snapshot's sweep: above everything of the first generation, below its reads.
SWEEP = "q" + str(SECOND_POINT).zfill(20) + "0" + "0" * 40


def query(root: Path, sql: str) -> list[tuple[Any, ...]]:
    relation = duckdb.sql(render(sql, str(root)))
    assert relation is not None
    return relation.fetchall()


def harness(store: Any) -> SinkHarness[Any]:
    sink = LakeSink(store, WindowConfig(window_ms=5 * MIN, grace_ms=MIN), idle_thread=False)
    return SinkHarness(sink, Decoder(), strategy=CommitStrategy.COMMIT_AFTER_FLUSH, batch_size=2)


def run(
    store: Any, records: dict[str, list[bytes]], committed: dict[TopicPartition, int] | None = None
) -> SinkHarness[Any]:
    h = harness(store)
    h.consumer.committed.update(committed or {})
    for topic, values in records.items():
        h.produce(topic, values)
    h.run_until_idle()
    h.shutdown()  # every part written, then committed
    assert h.dlq.records == []
    return h


def read(cdc: SimpleNamespace, point: int, oid: int, status: str, total: str, last: bool) -> bytes:
    return cdc.order(
        oid,
        status,
        op="r",
        total=total,
        customer=oid,
        ts=cdc.T0 + (point // 1_000) * MIN,
        lsn=point,
        sequence=(None, point),
        snapshot="last_in_data_collection" if last else "true",
    )


def line_read(cdc: SimpleNamespace, point: int, iid: int, oid: int, last: bool) -> bytes:
    return cdc.item(
        iid,
        oid,
        100 + oid,
        oid,
        "10.00",
        op="r",
        ts=cdc.T0 + (point // 1_000) * MIN,
        lsn=point,
        sequence=(None, point),
        snapshot="last" if last else "true",
    )


def streamed(
    cdc: SimpleNamespace, oid: int, status: str, total: str, commit: int | None, lsn: int
) -> bytes:
    """A streamed change of order ``oid`` (an update of a transaction after ``commit``)."""
    return cdc.order(
        oid,
        status,
        op="u" if commit is not None else "c",
        total=total,
        customer=oid,
        ts=cdc.T0 + (lsn // 1_000) * MIN,
        lsn=lsn,
        sequence=(commit, lsn),
    )


def history(cdc: SimpleNamespace) -> SimpleNamespace:
    """Two generations of one shop.

    First: a snapshot at 1000 reads orders 1, 2, 3 and their lines 11, 12, 13; then order 4
    is placed (line 14) and order 3 paid. Debezium loses its offsets; meanwhile order 2 and
    its line are deleted and order 3 is cancelled (none of it reaches Kafka). Second: a snapshot
    at 5000 reads orders 1, 3 (cancelled), 4 and lines 11, 13, 14 (not order 2, not line 12);
    after it order 5 is placed (line 15) and order 1 paid.
    """
    first_orders = [
        read(cdc, FIRST_POINT, 1, "pending", "10.00", False),
        read(cdc, FIRST_POINT, 2, "pending", "20.00", False),
        read(cdc, FIRST_POINT, 3, "pending", "30.00", True),
        cdc.order(
            4, total="40.00", customer=4, ts=cdc.T0 + MIN, lsn=1_200, sequence=(1_100, 1_200)
        ),
        streamed(cdc, 3, "paid", "30.00", 1_300, 1_400),
    ]
    first_items = [
        line_read(cdc, FIRST_POINT, 11, 1, False),
        line_read(cdc, FIRST_POINT, 12, 2, False),
        line_read(cdc, FIRST_POINT, 13, 3, True),
        cdc.item(14, 4, 104, 4, "10.00", ts=cdc.T0 + MIN, lsn=1_200, sequence=(1_100, 1_200)),
    ]
    second_orders = [
        read(cdc, SECOND_POINT, 1, "pending", "10.00", False),
        read(cdc, SECOND_POINT, 3, "cancelled", "30.00", False),
        read(cdc, SECOND_POINT, 4, "pending", "40.00", True),
        # The first transaction after the snapshot (no commit key), then a later one.
        cdc.order(
            5, total="50.00", customer=5, ts=cdc.T0 + 6 * MIN, lsn=5_100, sequence=(None, 5_100)
        ),
        streamed(cdc, 1, "paid", "10.00", 5_200, 5_300),
    ]
    second_items = [
        line_read(cdc, SECOND_POINT, 11, 1, False),
        line_read(cdc, SECOND_POINT, 13, 3, False),
        line_read(cdc, SECOND_POINT, 14, 4, True),
        cdc.item(15, 5, 105, 5, "10.00", ts=cdc.T0 + 6 * MIN, lsn=5_100, sequence=(None, 5_100)),
    ]
    return SimpleNamespace(
        first={cdc.ORDERS: first_orders, cdc.ITEMS: first_items},
        second={cdc.ORDERS: second_orders, cdc.ITEMS: second_items},
        # The topics as a consumer reads them (a run restarted from the first generation's
        # commit reads on from there).
        both={cdc.ORDERS: first_orders + second_orders, cdc.ITEMS: first_items + second_items},
        # Order 2 as the first generation saw it: its read, and a lagging change of it.
        old_order_2=[
            read(cdc, FIRST_POINT, 2, "pending", "20.00", False),
            streamed(cdc, 2, "paid", "20.00", 1_500, 1_600),
        ],
        old_line_12=[line_read(cdc, FIRST_POINT, 12, 2, False)],
    )


def expected(cdc: SimpleNamespace) -> dict[str, list[tuple[Any, ...]]]:
    """The source after both generations: 1 paid, 3 cancelled, 4 and 5 pending; order 2 and
    line 12 are gone. Lines of live orders: 11 (1 x 10), 14 (4 x 10), 15 (5 x 10)."""
    day = cdc.CREATED.date()
    return {
        "status": [("cancelled", 1), ("paid", 1), ("pending", 2)],
        "daily": [(day, 3, Decimal("100.00"))],
        "products": [
            (day, 101, 1, Decimal("10.00")),
            (day, 104, 4, Decimal("40.00")),
            (day, 105, 5, Decimal("50.00")),
        ],
    }


def totals(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "status": query(root, ORDER_STATUS_COUNTS),
        "daily": query(root, DAILY_SALES),
        "products": query(root, PRODUCT_SALES_BY_DAY),
    }


# -- folding and report building ----------------------------------------------------------------


def _decode(values: list[bytes], topic: str) -> list[Any]:
    decode = Decoder()
    return [decode(InMemoryMessage(topic, 0, i, None, v)) for i, v in enumerate(values)]


def test_the_last_read_of_a_table_records_its_sweep_in_the_part_and_its_image_report(
    cdc: SimpleNamespace,
) -> None:
    h = history(cdc)
    changes = _decode(h.second[cdc.ORDERS], cdc.ORDERS)
    part = Part(cdc.ORDERS, 0, cdc.T0, cdc.T0 + 5 * MIN, 0)
    for change in changes[:3]:  # the second snapshot's reads; the last one carries the sweep
        part.add(change, None, 0)
    assert changes[2].sweep == SWEEP and changes[0].sweep is None
    assert part.sweeps == {"orders": (SWEEP, 2)}
    orders = build_reports(part, "reports", top_n=10)[0]
    assert orders.report == "orders" and orders.num_rows == 3
    # Every row of the part's object carries the part's sweep: one object, one fact.
    assert orders.columns["sweep_version"] == [SWEEP] * 3
    assert orders.columns["sweep_offset"] == [2] * 3
    table = pq.read_table(io.BytesIO(encode_parquet(orders)))
    assert table.column("sweep_version").to_pylist() == [SWEEP] * 3
    assert encode_parquet(orders) == encode_parquet(build_reports(part, "reports", 10)[0])


def test_a_part_without_a_last_read_records_no_sweep(cdc: SimpleNamespace) -> None:
    h = history(cdc)
    part = Part(cdc.ORDERS, 0, cdc.T0, cdc.T0 + 5 * MIN, 0)
    for change in _decode(h.second[cdc.ORDERS], cdc.ORDERS)[3:]:  # streamed after it
        part.add(change, None, 0)
    assert part.sweeps == {}
    orders = build_reports(part, "reports", top_n=10)[0]
    assert orders.columns["sweep_version"] == [None] * 2
    assert orders.columns["sweep_offset"] == [None] * 2


def test_a_sweep_of_order_items_is_recorded_for_that_table(cdc: SimpleNamespace) -> None:
    h = history(cdc)
    part = Part(cdc.ITEMS, 0, cdc.T0, cdc.T0 + 5 * MIN, 0)
    for change in _decode(h.second[cdc.ITEMS], cdc.ITEMS):
        part.add(change, None, 0)
    assert part.sweeps == {"order_items": (SWEEP, 2)}
    items = build_reports(part, "reports", top_n=10)[0]
    assert items.report == "order_items"
    assert items.columns["sweep_version"] == [SWEEP] * 4


@pytest.mark.parametrize("newer_first", [False, True], ids=["in order", "old marker replayed"])
def test_a_part_keeps_the_highest_sweep_of_its_table(
    cdc: SimpleNamespace, newer_first: bool
) -> None:
    h = history(cdc)
    first = _decode(h.first[cdc.ORDERS][:3], cdc.ORDERS)[2]
    second = _decode(h.second[cdc.ORDERS][:3], cdc.ORDERS)[2]
    assert first.sweep is not None and second.sweep == SWEEP and first.sweep < SWEEP
    part = Part(cdc.ORDERS, 0, cdc.T0, cdc.T0 + 5 * MIN, 0)
    markers = [second, first] if newer_first else [first, second]
    for offset, change in enumerate(markers):
        part.add(replace(change, offset=offset), None, 0)
    assert part.sweeps == {"orders": (SWEEP, 0 if newer_first else 1)}


# -- the current state in the lake --------------------------------------------------------------


def test_the_current_state_drops_rows_the_new_snapshot_did_not_read(
    cdc: SimpleNamespace, make_store: Any, tmp_path: Path
) -> None:
    h = history(cdc)
    store = make_store()
    first = run(store, h.first)
    before = totals(store.dump(tmp_path / "first"))
    assert ("pending", 3) in before["status"], "order 2 is live before the second snapshot"
    run(store, h.both, first.committed)
    root = store.dump(tmp_path / "lake")
    assert totals(root) == expected(cdc)
    ids = duckdb.sql(
        f"SELECT DISTINCT order_id FROM read_parquet('{root}/orders/**/*.parquet') ORDER BY 1"
    ).fetchall()
    assert ids == [(1,), (2,), (3,), (4,), (5,)], "the lake is append-only: order 2's image stays"
    assert sorted(query(root, queries.SWEEPS)) == [
        ("order_items", sweep_version_of(h.first[cdc.ITEMS][2]), cdc.ITEMS, 0, 2),
        ("order_items", SWEEP, cdc.ITEMS, 0, 6),
        ("orders", sweep_version_of(h.first[cdc.ORDERS][2]), cdc.ORDERS, 0, 2),
        ("orders", SWEEP, cdc.ORDERS, 0, 7),
    ]


def sweep_version_of(value: bytes) -> str:
    change = Decoder()(InMemoryMessage("t", 0, 0, None, value))
    assert change is not None and change.sweep is not None
    return change.sweep


def test_an_old_change_after_the_sweep_does_not_bring_the_row_back(
    cdc: SimpleNamespace, make_store: Any, tmp_path: Path
) -> None:
    h = history(cdc)
    store = make_store()
    first = run(store, h.first)
    second = run(store, h.both, first.committed)
    # `cdc dlq replay` of order 2's first-generation read and of a change of it that lagged
    # behind, and of its line's read: the same bytes at new offsets, versions below the sweep.
    run(store, {cdc.ORDERS: h.both[cdc.ORDERS] + h.old_order_2}, second.committed)
    run(store, {cdc.ITEMS: h.both[cdc.ITEMS] + h.old_line_12}, second.committed)
    assert totals(store.dump(tmp_path)) == expected(cdc)


def test_a_redelivered_marker_writes_the_same_sweep_under_the_same_key(
    cdc: SimpleNamespace, make_store: Any, tmp_path: Path
) -> None:
    h = history(cdc)
    store = make_store()
    first = run(store, h.first)
    run(store, h.both, first.committed)
    # A crash before the commit: the whole range is read and written again.
    run(store, h.both, first.committed)
    bodies: dict[str, set[bytes]] = {}
    for key, body in store.puts:
        bodies.setdefault(key, set()).add(body)
    rewritten = {k for k in bodies if sum(1 for key, _ in store.puts if key == k) > 1}
    swept = {k for k in rewritten if "/orders/" in k or "/order_items/" in k}
    assert len(swept) == 2, rewritten  # the second generation's orders and order_items parts
    assert all(len(bodies[k]) == 1 for k in rewritten), "a key always holds the same bytes"
    for key in swept:  # and those bytes hold the sweep
        (body,) = bodies[key]
        assert set(pq.read_table(io.BytesIO(body)).column("sweep_version").to_pylist()) == {SWEEP}
    assert totals(store.dump(tmp_path)) == expected(cdc)


def test_a_sweep_applies_to_its_own_table_only(
    cdc: SimpleNamespace, make_store: Any, tmp_path: Path
) -> None:
    h = history(cdc)
    store = make_store()
    first = run(store, h.first)
    # Only the orders topic got as far as its last read; the items' snapshot is not consumed.
    run(store, {cdc.ORDERS: h.first[cdc.ORDERS] + h.second[cdc.ORDERS][:3]}, first.committed)
    root = store.dump(tmp_path)
    day = cdc.CREATED.date()
    # Order 2 is swept; line 12 is not (no order_items sweep), but its order is gone. Line 13's
    # order is cancelled; lines 11 and 14 are first-generation images that no sweep touches.
    assert query(root, ORDER_STATUS_COUNTS) == [("cancelled", 1), ("pending", 2)]
    assert query(root, PRODUCT_SALES_BY_DAY) == [
        (day, 101, 1, Decimal("10.00")),
        (day, 104, 4, Decimal("40.00")),
    ]
    sweeps = duckdb.sql(
        f"SELECT DISTINCT sweep_version FROM read_parquet('{root}/order_items/**/*.parquet')"
        " WHERE sweep_version IS NOT NULL"
    ).fetchall()
    # Only the first snapshot's sweep of order_items, which sweeps nothing.
    assert sweeps == [(sweep_version_of(h.first[cdc.ITEMS][2]),)]


def _write(root: Path, part: Part, drop: tuple[str, ...] = ()) -> None:
    (table,) = [t for t in build_reports(part, "reports", 10) if t.report == "orders"]
    path = root.parent / f"{table.key}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_parquet(table))
    if drop:  # as the flusher wrote it before these columns existed
        pq.write_table(pq.read_table(path).drop_columns(list(drop)), path)


def _order(oid: int, version: str, offset: int, cdc: SimpleNamespace) -> OrderChange:
    return OrderChange(
        order_id=oid,
        customer_id=oid,
        status="pending",
        total=Decimal("1.00"),
        created_at=cdc.CREATED,
        deleted=False,
        op="c",
        source_ts_ms=cdc.T0,
        offset=offset,
        version=version,
        event_id=f"e{oid}",
    )


def test_images_with_an_older_version_form_or_none_count_as_below_the_sweep(
    cdc: SimpleNamespace, tmp_path: Path
) -> None:
    root = tmp_path / "reports"
    # Versions written before generations (``p``, class first), on partition 1 ...
    old = Part(cdc.ORDERS, 1, cdc.T0, cdc.T0 + 5 * MIN, 0)
    old.add(_order(7, "p1" + "9" * 40, 0, cdc), None, 0)
    old.add(_order(8, "p2" + "9" * 40, 1, cdc), None, 0)
    _write(root, old)
    # ... and an object from before source_version (no version at all), on partition 2.
    unversioned = Part(cdc.ORDERS, 2, cdc.T0, cdc.T0 + 5 * MIN, 0)
    unversioned.add(_order(9, "unused", 0, cdc), None, 0)
    _write(root, unversioned, drop=("source_version", "sweep_version", "sweep_offset"))
    assert query(root, ORDER_STATUS_COUNTS) == [("pending", 3)]
    h = history(cdc)
    part = Part(cdc.ORDERS, 0, cdc.T0, cdc.T0 + 5 * MIN, 0)
    for change in _decode(h.second[cdc.ORDERS][:3], cdc.ORDERS):
        part.add(change, None, 0)
    _write(root, part)
    # Orders 7, 8 and 9 were not read by the new snapshot: swept, whatever their form.
    assert query(root, ORDER_STATUS_COUNTS) == [("cancelled", 1), ("pending", 2)]


def test_each_recorded_sweep_is_logged_once_and_counted(
    cdc: SimpleNamespace, make_store: Any
) -> None:
    h = history(cdc)
    store = make_store()
    first = run(store, h.first)
    second = harness(store)
    second.consumer.committed.update(first.committed)
    second.produce(cdc.ORDERS, h.both[cdc.ORDERS])
    second.produce(cdc.ITEMS, h.both[cdc.ITEMS])
    with capture_logs() as logs:
        second.run_until_idle()
        second.shutdown()
    recorded = [e for e in logs if e["event"] == "sweep recorded"]
    assert sorted(
        (e["table"], e["sweep_version"], e["partition"], e["offset"]) for e in recorded
    ) == [
        ("order_items", SWEEP, 0, 6),
        ("orders", SWEEP, 0, 7),
    ]
    registry = second.sink.metrics_registry
    for table in ("orders", "order_items"):
        labels = {"service": "analytics-flusher", "table": table}
        assert registry.get_sample_value("lake_sweeps_recorded_total", labels) == 1


def test_window_summaries_are_history_and_not_rewritten_by_a_sweep(
    cdc: SimpleNamespace, make_store: Any
) -> None:
    h = history(cdc)
    store = make_store()
    first = run(store, h.first)
    summaries = {k: v for k, v in store.objects.items() if "/sales/" in k}
    assert summaries
    run(store, h.both, first.committed)
    assert {k: store.objects[k] for k in summaries} == summaries


def test_a_snapshots_reads_and_later_changes_sort_above_its_sweep(cdc: SimpleNamespace) -> None:
    # The premise of the rule: a snapshot's reads and what is streamed after it sort above its
    # sweep, everything of the earlier generation below it.
    h = history(cdc)
    assert all(c.version > SWEEP for c in _decode(h.second[cdc.ORDERS], cdc.ORDERS))
    assert all(c.version < SWEEP for c in _decode(h.first[cdc.ORDERS], cdc.ORDERS))
    assert all(c.version < SWEEP for c in _decode(h.old_order_2, cdc.ORDERS))
