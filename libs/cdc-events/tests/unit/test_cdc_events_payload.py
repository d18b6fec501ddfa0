"""``integer_id`` and ``SHOP_COLUMN_TYPES``: the payload helpers every shop consumer shares."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cdc_events import SHOP_COLUMN_TYPES, UNCHANGED, ParseError, integer_id


def test_the_id_comes_from_the_key_else_from_the_row() -> None:
    assert integer_id("orders", {"id": 7}, {"id": 8}) == 7
    assert integer_id("orders", None, {"id": 8}) == 8
    assert integer_id("orders", {}, {"id": 8}) == 8
    assert integer_id("order_items", {"item": 3}, None, column="item") == 3


@pytest.mark.parametrize(
    ("key", "row", "code"),
    [
        (None, None, "missing_field"),
        ({}, {"name": "x"}, "missing_field"),
        (None, {"id": UNCHANGED}, "missing_field"),
        ({"id": "7"}, None, "type_mismatch"),
        ({"id": True}, None, "type_mismatch"),
        (None, {"id": 7.0}, "type_mismatch"),
    ],
)
def test_a_missing_or_non_integer_id_is_a_parse_error(
    key: dict[str, object] | None, row: dict[str, object] | None, code: str
) -> None:
    with pytest.raises(ParseError) as caught:
        integer_id("orders", key, row)
    assert caught.value.code == code
    assert "orders" in caught.value.message


def test_the_shop_column_types_decode_schemaless_money_and_time() -> None:
    orders = SHOP_COLUMN_TYPES.for_table("public", "orders", None)
    assert orders is not None
    assert orders["total"]("BOI=", "orders.total") == Decimal("12.50")
    assert set(SHOP_COLUMN_TYPES.tables) == {
        "public.products",
        "public.orders",
        "public.order_items",
    }
