"""Values the lake cannot hold are refused per record at ``write_batch`` (the runtime isolates
and dead-letters just that record), legitimate source values are always written, and a part
that still cannot be written stops the sink loudly instead of being retried for ever.

The shop's columns (libs/devstack shop_schema.sql): ids and quantities ``integer``, totals
``numeric(12,2)``, unit prices ``numeric(10,2)``, statuses ``text``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from analytics_flusher import (
    Decoder,
    ItemChange,
    LakeSink,
    OrderChange,
    Part,
    PartitionWindows,
    UnwritablePartError,
    WindowConfig,
    build_reports,
    encode_parquet,
)
from analytics_flusher._encodable import refusal
from consumer_runtime import CommitStrategy, RejectedError, TopicPartition
from consumer_runtime.testing import SinkHarness

MIN = 60_000
I64, I32 = 2**63, 2**31
MAX_PRICE = Decimal("99999999.99")  # numeric(10,2)
MAX_TOTAL = Decimal("9999999999.99")  # numeric(12,2)
MAX_QTY = I32 - 1  # integer


def harness(sink: LakeSink, batch_size: int = 500) -> SinkHarness[Any]:
    return SinkHarness(
        sink, Decoder(), strategy=CommitStrategy.COMMIT_AFTER_FLUSH, batch_size=batch_size
    )


def sink_for(store: Any, **kw: Any) -> LakeSink:
    return LakeSink(store, WindowConfig(window_ms=5 * MIN, grace_ms=MIN), idle_thread=False, **kw)


def rows(root: Path, sql: str) -> list[tuple[Any, ...]]:
    relation = duckdb.sql(sql.replace("{root}", str(root)))
    assert relation is not None
    return relation.fetchall()


def test_a_value_the_lake_cannot_hold_is_dead_lettered_and_the_rest_written(
    cdc: SimpleNamespace, store: Any, tmp_path: Path
) -> None:
    t = cdc.T0
    orders = [cdc.order(i, total="10.00", ts=t + i) for i in range(1, 7)]
    orders[3] = cdc.order(4, total="100000000000000000.00", ts=t + 4)  # past decimal(18,2)
    items = [cdc.item(i, i, 100 + i, ts=t + i) for i in range(1, 5)]
    items[1] = cdc.item(2, 2, 102, qty=I32, ts=t + 2)  # past int32
    sink = sink_for(store)
    h = harness(sink)
    h.produce(cdc.ORDERS, orders)
    h.produce(cdc.ITEMS, items)
    h.run_until_idle()
    h.shutdown()
    dead = sorted((d.topic, d.offset, d.code) for d in h.dead_letters)
    assert dead == [(cdc.ITEMS, 1, "store_rejected"), (cdc.ORDERS, 3, "store_rejected")]
    by_topic = {d.topic: d for d in h.dead_letters}
    assert "total" in by_topic[cdc.ORDERS].message
    assert "decimal128(18, 2)" in by_topic[cdc.ORDERS].message
    assert "quantity" in by_topic[cdc.ITEMS].message
    assert "int32" in by_topic[cdc.ITEMS].message
    assert by_topic[cdc.ORDERS].exception_class.endswith("UnencodableValueError")
    assert h.committed == {TopicPartition(cdc.ORDERS, 0): 6, TopicPartition(cdc.ITEMS, 0): 4}
    root = store.dump(tmp_path)
    assert rows(root, "SELECT order_id FROM '{root}/orders/**/*.parquet' ORDER BY 1") == [
        (1,),
        (2,),
        (3,),
        (5,),
        (6,),
    ]
    assert rows(root, "SELECT item_id FROM '{root}/order_items/**/*.parquet' ORDER BY 1") == [
        (1,),
        (3,),
        (4,),
    ]


def test_the_largest_legitimate_values_are_written(
    cdc: SimpleNamespace, store: Any, tmp_path: Path
) -> None:
    # A line of the largest quantity at the largest price is 2.1e17, past decimal(18,2).
    t = cdc.T0
    n = 40
    sink = sink_for(store)
    h = harness(sink, batch_size=7)
    h.produce(
        cdc.ORDERS,
        [cdc.order(I32 - 1 - i, total=str(MAX_TOTAL), customer=I32 - 1, ts=t) for i in range(n)],
    )
    h.produce(
        cdc.ITEMS,
        [cdc.item(I32 - 1 - i, I32 - 1, I32 - 1, MAX_QTY, str(MAX_PRICE), ts=t) for i in range(n)],
    )
    h.run_until_idle()
    h.shutdown()
    assert h.dead_letters == []
    root = store.dump(tmp_path)
    line = MAX_PRICE * MAX_QTY
    assert rows(
        root, "SELECT sum(revenue), sum(units) FROM '{root}/product_sales/**/*.parquet'"
    ) == [(line * n, MAX_QTY * n)]
    assert rows(root, "SELECT sum(revenue_placed) FROM '{root}/customer_metrics/**/*.parquet'") == [
        (MAX_TOTAL * n,)
    ]


def test_sums_of_the_widest_amounts_the_lake_takes_are_exact(
    cdc: SimpleNamespace, store: Any, tmp_path: Path
) -> None:
    # Prices at the edge of decimal(18,2) (the source's numeric(10,2) cannot hold them, the
    # lake's column can): 40 lines of 2.1e25 each sum past the 28 digits of Python's default
    # decimal context, which would round the sum.
    price = Decimal("9999999999999999.99")
    h = harness(sink_for(store), batch_size=9)
    h.produce(cdc.ITEMS, [cdc.item(i, 1, 7, MAX_QTY, str(price), ts=cdc.T0) for i in range(40)])
    h.run_until_idle()
    h.shutdown()
    assert h.dead_letters == []
    root = store.dump(tmp_path)
    got = rows(root, "SELECT revenue FROM '{root}/product_sales/**/*.parquet'")
    assert got == [(price * MAX_QTY * 40,)]
    assert len(str(got[0][0]).replace(".", "")) > 28


def test_a_part_is_closed_when_it_holds_max_part_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("analytics_flusher.domain.MAX_PART_EVENTS", 3)
    state = PartitionWindows("t", 0, WindowConfig())
    closed: list[Part] = []
    for offset in range(7):  # one row, changed again and again, in one window
        state.add(order(offset=offset, version=f"p{offset}"), closed, 0)
    assert [(p.first_offset, p.last_offset, p.events) for p in closed] == [(0, 2, 3), (3, 5, 3)]
    assert state.open[0].events == 1


def order(**kw: Any) -> OrderChange:
    base: dict[str, Any] = {
        "order_id": 1,
        "customer_id": 1,
        "status": "pending",
        "total": Decimal("1.00"),
        "created_at": None,
        "deleted": False,
        "op": "c",
        "source_ts_ms": 0,
        "offset": 0,
        "version": "p1",
        "event_id": "e",
    }
    return OrderChange(**{**base, **kw})


def item(**kw: Any) -> ItemChange:
    base: dict[str, Any] = {
        "item_id": 1,
        "order_id": 1,
        "product_id": 1,
        "quantity": 1,
        "unit_price": Decimal("1.00"),
        "deleted": False,
        "op": "c",
        "source_ts_ms": 0,
        "offset": 0,
        "version": "p1",
        "event_id": "e",
    }
    return ItemChange(**{**base, **kw})


def _encodes(change: OrderChange | ItemChange) -> bool:
    part = Part("t", 0, 0, 5 * MIN, 0)
    try:
        part.add(change, None, 0)
        for table in build_reports(part, "reports", top_n=10):
            encode_parquet(table)
    except (pa.ArrowException, OverflowError, ValueError, ArithmeticError, UnicodeError):
        return False
    return True


EDGE = Decimal("9999999999999999.99")  # decimal(18,2)'s largest
CASES = [
    *(order(order_id=v) for v in (I64 - 1, I64, -I64, -I64 - 1)),
    *(order(customer_id=v) for v in (I64 - 1, I64, -I64, -I64 - 1)),
    *(order(total=v) for v in (EDGE, EDGE + Decimal("0.01"), -EDGE, -EDGE - Decimal("0.01"))),
    *(order(status=v) for v in ("é", "\ud800", "")),
    *(item(item_id=v) for v in (I64 - 1, I64, -I64 - 1)),
    *(item(order_id=v) for v in (I64 - 1, I64)),
    *(item(product_id=v) for v in (I64 - 1, I64, -I64 - 1)),
    *(item(quantity=v) for v in (I32 - 1, I32, -I32, -I32 - 1)),
    *(item(unit_price=v) for v in (EDGE, EDGE + Decimal("0.01"), -EDGE - Decimal("0.01"))),
    item(quantity=I32 - 1, unit_price=EDGE),  # its line revenue: 2.1e25
    item(quantity=-I32, unit_price=-EDGE),
]


@pytest.mark.parametrize("change", CASES, ids=repr)
def test_what_write_batch_refuses_is_exactly_what_parquet_cannot_hold(
    change: OrderChange | ItemChange,
) -> None:
    assert (refusal(change) is None) == _encodes(change)


class RefusingStore:
    """S3 refusing every ``orders`` object for good (as ``aws_errors`` maps a
    ``ValidationException``); the rest is kept."""

    def __init__(self, refusal: BaseException) -> None:
        self.refusal = refusal
        self.objects: dict[str, bytes] = {}
        self.attempts = 0

    def put(self, key: str, body: bytes, content_type: str) -> None:
        if "/orders/" in key:
            self.attempts += 1
            raise self.refusal
        self.objects[key] = body

    def healthy(self) -> bool:
        return True


@pytest.mark.parametrize(
    "failure",
    [RejectedError("put s3://b/k: ValidationException from AWS"), PermissionError("denied")],
    ids=["rejected", "other"],
)
def test_an_unwritable_part_stops_the_sink_without_dead_lettering_its_records(
    cdc: SimpleNamespace, failure: BaseException
) -> None:
    store = RefusingStore(failure)
    h = harness(sink_for(store, upload_concurrency=1), batch_size=2)
    t = cdc.T0
    # Window 0's part is closed by the third record's watermark and cannot be written.
    h.produce(
        cdc.ORDERS, [cdc.order(1, ts=t), cdc.order(2, ts=t + MIN), cdc.order(3, ts=t + 9 * MIN)]
    )
    with pytest.raises(UnwritablePartError, match=r"offsets 0\.\.1") as raised:
        h.run_until_idle()
    assert raised.value.__cause__ is failure
    assert "not retried" in str(raised.value)
    assert h.dead_letters == []  # nothing of the batch is blamed
    assert h.committed.get(TopicPartition(cdc.ORDERS, 0), 0) == 0
    assert store.attempts == 1  # not retried


def test_an_encoding_failure_is_a_bug_surfaced_once(
    cdc: SimpleNamespace, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def broken(table: Any) -> bytes:
        calls.append(table.key)
        raise pa.ArrowInvalid("a bug in the report code")

    monkeypatch.setattr("analytics_flusher._uploads.encode_parquet", broken)
    h = harness(sink_for(store), batch_size=1)
    t = cdc.T0
    h.produce(cdc.ORDERS, [cdc.order(1, ts=t), cdc.order(2, ts=t + 9 * MIN), cdc.order(3, ts=t)])
    with pytest.raises(UnwritablePartError, match="a bug in the report code"):
        h.run_until_idle()
    assert h.dead_letters == []
    assert len(calls) == len(set(calls)), "an object that cannot be encoded is not retried"
    assert store.objects == {}
