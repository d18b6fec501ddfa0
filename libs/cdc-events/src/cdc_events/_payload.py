"""Helpers for reading a change's payload that every consumer of the shop's tables needs: the
integer id of the changed row, and the column types of the shop's schemaless topics.

They live here, once, so that every service reads ids and decodes columns the same way and
raises the same ``ParseError`` codes for the same bad input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cdc_events._column_types import ColumnTypes, DecimalColumn
from cdc_events._errors import ParseError
from cdc_events._model import UNCHANGED

#: The shop's NUMERIC and timestamp columns. Schemaless (``schemas.enable=false``) records
#: carry no logical types, so decimals and timestamps decode the same with or without schemas;
#: with schemas, a field's own logical type wins over this registry.
SHOP_COLUMN_TYPES: Final = ColumnTypes(
    {
        "public.products": {"price": DecimalColumn(scale=2), "updated_at": "timestamp"},
        "public.orders": {"total": DecimalColumn(scale=2), "created_at": "timestamp"},
        "public.order_items": {"unit_price": DecimalColumn(scale=2)},
    }
)


def integer_id(
    table: str,
    key: Mapping[str, Any] | None,
    row: Mapping[str, Any] | None,
    column: str = "id",
) -> int:
    """The integer ``column`` of a changed row: from the record's key, else from the row image
    (a record produced without a key, or a key without that column).

    Raises ``ParseError("missing_field")`` when neither has it and
    ``ParseError("type_mismatch")`` when it is not an integer.
    """
    value = key.get(column) if key else None
    if value is None and row:
        value = row.get(column)
    if value is None or value is UNCHANGED:
        raise ParseError("missing_field", f"{table} change without an {column} in its key or row")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError("type_mismatch", f"{table}.{column} is not an integer: {value!r:.80}")
    return value
