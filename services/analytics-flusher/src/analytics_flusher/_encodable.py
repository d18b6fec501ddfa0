"""What the lake can hold, checked per record when ``write_batch`` receives it.

The flusher buffers changes in open windows and encodes Parquet only when a part closes, so a
value that no column of its report can take would fail that part's upload on every attempt,
and one record would stop its partition for good. So ``LakeSink.write_batch`` checks each change
against the Arrow types of its image report (``store._parquet.SCHEMAS``, where the bounds below
come from) before it folds anything, and refuses the batch (``RejectedError``) when a change
does not fit: the runtime isolates that record, dead-letters it with ``store_rejected`` and this
module's reason, and writes the rest.

Every value the shop's source columns allow fits: ``integer`` ids and quantities (int64,
int32), ``numeric(12,2)`` totals and ``numeric(10,2)`` prices (decimal(18,2)), ``text``
statuses (UTF-8 strings), and ``timestamptz`` (the parser reads years 1-9999, all within
timestamp[us]); the summaries derived from them are sized for any part
(``store._parquet.SUM_MONEY``, ``domain.MAX_PART_EVENTS``). What is refused is data no column
of the shop holds: an integer past int64, a quantity past int32, an amount past decimal(18,2),
text that is not valid UTF-8. Amounts arrive rounded to cents (the decoder quantizes them), so
only their magnitude is checked. A handful of comparisons per change, well under a microsecond.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from consumer_runtime import Batch, RejectedError

from analytics_flusher._changes import Change, OrderChange
from analytics_flusher.errors import UnencodableValueError
from analytics_flusher.store import SCHEMAS


def _int_range(report: str, column: str) -> tuple[int, int, str]:
    kind = SCHEMAS[report].field(column).type
    half = 1 << (kind.bit_width - 1)
    return -half, half - 1, str(kind)


def _decimal_digits(report: str, column: str) -> tuple[int, str]:
    """The largest ``Decimal.adjusted()`` (exponent of the leading digit) the column holds."""
    kind = SCHEMAS[report].field(column).type
    return kind.precision - kind.scale - 1, str(kind)


_ID = _int_range("orders", "order_id")
_ITEM_ID = _int_range("order_items", "item_id")
_CUSTOMER = _int_range("orders", "customer_id")
_ITEM_ORDER = _int_range("order_items", "order_id")
_PRODUCT = _int_range("order_items", "product_id")
_QUANTITY = _int_range("order_items", "quantity")
_TOTAL = _decimal_digits("orders", "total")
_PRICE = _decimal_digits("order_items", "unit_price")


def refuse_unencodable(batch: Batch[Change]) -> None:
    """Raise ``RejectedError`` (caused by ``UnencodableValueError``, which the dead letter
    names) if a change of ``batch`` holds a value the lake cannot encode."""
    for records in batch.records.values():
        for record in records:
            reason = refusal(record)
            if reason is not None:
                raise RejectedError(reason) from UnencodableValueError(reason)


def refusal(change: Change) -> str | None:
    """Why the lake cannot hold ``change`` (``table.column=value does not fit ...``), or None."""
    # The common case in one expression (this runs for every record); the reason, and non-ASCII
    # text, in the functions below.
    if isinstance(change, OrderChange):
        customer, total, status = change.customer_id, change.total, change.status
        if (
            _ID[0] <= change.order_id <= _ID[1]
            and (customer is None or _CUSTOMER[0] <= customer <= _CUSTOMER[1])
            and (total is None or (total.is_finite() and total.adjusted() <= _TOTAL[0]))
            and (status is None or status.isascii())
        ):
            return None
        return (
            _int("orders.id", change.order_id, _ID)
            or _int("orders.customer_id", customer, _CUSTOMER)
            or _amount("orders.total", total, _TOTAL)
            or _text("orders.status", status)
        )
    order, product, quantity, price = (
        change.order_id,
        change.product_id,
        change.quantity,
        change.unit_price,
    )
    if (
        _ITEM_ID[0] <= change.item_id <= _ITEM_ID[1]
        and (order is None or _ITEM_ORDER[0] <= order <= _ITEM_ORDER[1])
        and (product is None or _PRODUCT[0] <= product <= _PRODUCT[1])
        and (quantity is None or _QUANTITY[0] <= quantity <= _QUANTITY[1])
        and (price is None or (price.is_finite() and price.adjusted() <= _PRICE[0]))
    ):
        return None
    return (
        _int("order_items.id", change.item_id, _ITEM_ID)
        or _int("order_items.order_id", order, _ITEM_ORDER)
        or _int("order_items.product_id", product, _PRODUCT)
        or _int("order_items.quantity", quantity, _QUANTITY)
        or _amount("order_items.unit_price", price, _PRICE)
    )


def _int(column: str, value: int | None, bounds: tuple[int, int, str]) -> str | None:
    low, high, kind = bounds
    if value is None or low <= value <= high:
        return None
    return f"{column}={value} does not fit the lake's {kind} column"


def _amount(column: str, value: Decimal | None, bounds: tuple[int, str]) -> str | None:
    digits, kind = bounds
    if value is None or (value.is_finite() and value.adjusted() <= digits):
        return None
    return f"{column}={_short(value)} does not fit the lake's {kind} column"


def _text(column: str, value: str | None) -> str | None:
    if value is None or value.isascii():
        return None
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        return f"{column} is not valid UTF-8 text ({exc.reason} at character {exc.start})"
    return None


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else f"{text[:40]}...({len(text)} characters)"
