"""Schema evolution's pure rules (``store._iceberg._evolve``): the Iceberg type of a new
column's value, what a column takes without loss, the reason a change is refused; and what the
writer holds per partition (``_buffers``) and when report tables are rewritten (``_reports``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from analytics_flusher import OrderChange
from analytics_flusher.store._iceberg._buffers import Held
from analytics_flusher.store._iceberg._evolve import (
    column_name,
    extra_arrays,
    extra_columns,
    fits,
    refusal,
    type_of,
)
from analytics_flusher.store._iceberg._reports import _newer
from analytics_flusher.store._iceberg._tables import ORDERS_CHANGES
from pyiceberg.schema import Schema
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

UTC = dt.UTC


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (True, BooleanType()),
        (7, LongType()),
        (1.5, DoubleType()),
        (Decimal("1.250"), DecimalType(38, 3)),
        (Decimal("12"), DecimalType(38, 0)),
        (Decimal("1E+3"), DecimalType(38, 0)),
        ("text", StringType()),
        ({"a": 1}, StringType()),
        (dt.datetime(2026, 1, 1, tzinfo=UTC), TimestamptzType()),
        (dt.datetime(2026, 1, 1), TimestampType()),
        (dt.date(2026, 1, 1), DateType()),
        (dt.time(12, 0), TimeType()),
        (b"\x00", BinaryType()),
        (None, None),
    ],
)
def test_a_value_gives_its_column_type(value: object, kind: object) -> None:
    assert type_of(value) == kind


@pytest.mark.parametrize(
    ("value", "column", "ok"),
    [
        (5, LongType(), True),
        (2**63, LongType(), False),
        (True, LongType(), False),  # a bool is no integer here
        ("5", LongType(), False),
        (5, DoubleType(), True),
        (2**53 + 1, DoubleType(), False),
        (Decimal("1.5"), DoubleType(), False),
        (Decimal("1.5"), DecimalType(38, 2), True),
        (Decimal("1.505"), DecimalType(38, 2), False),
        (Decimal("1.500"), DecimalType(38, 2), True),  # the same number at a finer scale
        (Decimal("NaN"), DecimalType(38, 2), False),
        (Decimal("1E+37"), DecimalType(38, 2), False),
        (3, DecimalType(38, 3), True),
        ([1, 2], StringType(), True),
        (dt.datetime(2026, 1, 1), TimestamptzType(), False),
        (dt.datetime(2026, 1, 1, tzinfo=UTC), TimestampType(), False),
        (dt.datetime(2026, 1, 1, tzinfo=UTC), DateType(), False),
        (dt.date(2026, 1, 1), DateType(), True),
        (None, LongType(), True),
    ],
)
def test_a_column_takes_only_what_it_holds_without_loss(
    value: object, column: object, ok: bool
) -> None:
    assert fits(value, column) is ok  # type: ignore[arg-type]


def _order(**extra: object) -> OrderChange:
    return OrderChange(
        order_id=1,
        customer_id=1,
        status="paid",
        total=Decimal("1.00"),
        created_at=dt.datetime(2026, 1, 1, tzinfo=UTC),
        deleted=False,
        op="c",
        source_ts_ms=0,
        offset=0,
        version="q",
        event_id="e",
        extra=tuple(extra.items()),
    )


def test_a_type_change_is_refused_with_its_reason_and_a_new_column_is_taken() -> None:
    columns = {"gift_note": StringType(), "weight": DecimalType(38, 3)}
    assert refusal(ORDERS_CHANGES, columns, _order(gift_note="x", coupon=True)) is None
    reason = refusal(ORDERS_CHANGES, columns, _order(gift_note=7))
    assert reason is not None
    assert reason.startswith("orders_changes.gift_note is string; this change holds 7 (int)")
    long_text = refusal(ORDERS_CHANGES, columns, _order(weight="x" * 200))
    assert long_text is not None and "..." in long_text and len(long_text) < 300
    too_big = refusal(ORDERS_CHANGES, columns, _order(counter=2**64))
    assert too_big == f"orders_changes.counter={2**64} does not fit a long column"


def test_source_columns_named_like_the_tables_own_are_renamed() -> None:
    assert column_name("op") == "source_op"
    assert column_name("kafka_offset") == "source_kafka_offset"
    assert column_name("gift_note") == "gift_note"
    found = extra_columns([(("op", None),), (("op", "x"), ("n", 1))])
    assert found == {"source_op": StringType(), "n": LongType()}


def test_extra_arrays_align_with_the_rows_and_null_what_no_longer_fits() -> None:
    schema = Schema(
        NestedField(20, "note", StringType(), required=False),
        NestedField(21, "score", DoubleType(), required=False),
    )
    extras = [(("note", "a"), ("score", 2)), (), (("note", 9),), (("note", {"k": 1}),)]
    fields, arrays, nulled = extra_arrays(schema, extras)
    assert [f.name for f in fields] == ["note", "score"]
    assert arrays[0].to_pylist() == ["a", None, None, '{"k":1}']
    assert arrays[1].to_pylist() == [2.0, None, None, None]
    assert nulled == 1  # the 9: the column is text


def test_held_chunks_keep_the_first_offset_and_go_back_in_front() -> None:
    held = Held()
    held.add(ORDERS_CHANGES, 0, [_order(), _order()])
    assert (held.rows, held.first) == (2, 0)
    taken = held.take()
    assert (held.rows, held.first, held.chunks) == (0, None, [])
    later = Held()
    later.add(ORDERS_CHANGES, 0, [_order(note="x")])
    later.put_back(taken)
    assert later.rows == 3
    assert [extras for _rows, extras in later.chunks] == [None, [(("note", "x"),)]]


def test_report_tables_are_rewritten_only_from_newer_sources() -> None:
    recorded = {"orders_changes": (11, 4), "order_items_changes": (21, 6)}
    assert _newer({"orders_changes": (12, 5), "order_items_changes": (21, 6)}, recorded)
    assert not _newer(dict(recorded), recorded)  # the same: nothing to do
    assert not _newer({"orders_changes": (12, 5), "order_items_changes": (20, 5)}, recorded)
    assert _newer({"orders_changes": (1, 1), "order_items_changes": None}, None)
