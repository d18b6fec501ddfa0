"""The flusher's decoded changes: the image of an ``orders`` or ``order_items`` row after one
Debezium change, and the decoder that makes them (the runtime's decoder hook).

Pure (no I/O library), like ``domain``, which folds these changes into windows. A change keeps
only the columns the lake writes, plus its source version, event id and Kafka offset; each
change knows about how many bytes it holds in memory (``held_bytes``: a cheap estimate, no
deep size walk), which is what ``MAX_OPEN_BYTES`` bounds.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, ClassVar

from cdc_events import (
    SHOP_COLUMN_TYPES,
    UNCHANGED,
    ChangeView,
    ParseError,
    Parser,
    Versions,
    integer_id,
    sweep_version,
)
from consumer_runtime import Message

CENTS = Decimal("0.01")
ZERO = Decimal("0.00")
CANCELLED = "cancelled"

# What one row costs in memory while its window is open, besides its text: the change object
# (slots), its Decimal, datetime, version and event-id strings and integers, and its entries in
# the part's dictionaries (images, change counts, summary accumulators). Measured with
# tracemalloc over 50,000 decoded changes each (830 and 680 bytes per row with the shop's
# statuses), rounded up.
ORDER_ROW_BYTES = 800
ITEM_ROW_BYTES = 700


@dataclass(frozen=True, slots=True)
class OrderChange:
    """The image of an ``orders`` row after one change (a delete keeps only the id).

    ``version`` (``cdc_events.source_version``) is the change's place in its row's history: of
    a row's images, the one with the highest version is its current state. ``offset`` is only
    where the record sits in Kafka (commits, object keys): a dead letter replayed at a new
    offset is still the old change it was.
    """

    order_id: int
    customer_id: int | None
    status: str | None
    total: Decimal | None
    created_at: datetime | None
    deleted: bool
    op: str
    source_ts_ms: int
    offset: int
    version: str
    event_id: str
    before_status: str | None = None
    #: ``cdc_events.sweep_version`` on a snapshot's last read of the table, else None: the rows
    #: of ``table`` whose newest version is below it are gone from the source (``domain.Part``).
    sweep: str | None = None
    #: The row's other columns (name, decoded value), in the image's order: columns added to
    #: the source table after this flusher's were fixed, written to the changes table as they
    #: appear (README, "Schema evolution"). Empty for the shop's own columns and for deletes.
    extra: tuple[tuple[str, Any], ...] = ()

    #: The lake's image report of this table, and the table a sweep it carries applies to.
    table: ClassVar[str] = "orders"

    @property
    def order_day(self) -> date | None:
        return None if self.created_at is None else self.created_at.date()

    @property
    def live(self) -> bool:
        """Counts in sales: present and not cancelled."""
        return not self.deleted and self.status != CANCELLED and self.status is not None

    @property
    def held_bytes(self) -> int:
        """About how much memory this image holds in an open window; the status is the only
        column of unbounded length (``sys.getsizeof`` of a string is its exact size, in O(1))."""
        status = self.status
        return ORDER_ROW_BYTES + (_sizeof(status) if status is not None else 0)


@dataclass(frozen=True, slots=True)
class ItemChange:
    """The image of an ``order_items`` row after one change (``version``: as ``OrderChange``)."""

    item_id: int
    order_id: int | None
    product_id: int | None
    quantity: int | None
    unit_price: Decimal | None
    deleted: bool
    op: str
    source_ts_ms: int
    offset: int
    version: str
    event_id: str
    #: As ``OrderChange.sweep``.
    sweep: str | None = None
    #: As ``OrderChange.extra``.
    extra: tuple[tuple[str, Any], ...] = ()

    #: As ``OrderChange.table``.
    table: ClassVar[str] = "order_items"

    @property
    def revenue(self) -> Decimal:
        if self.deleted or self.quantity is None or self.unit_price is None:
            return Decimal("0.00")
        return (self.unit_price * self.quantity).quantize(CENTS)

    #: About how much memory this image holds in an open window (no column of unbounded
    #: length: a constant, read as cheaply as an attribute).
    held_bytes: ClassVar[int] = ITEM_ROW_BYTES


Change = OrderChange | ItemChange

_sizeof = sys.getsizeof

#: The source columns each change type holds in its own fields; any other is an ``extra``.
ORDER_COLUMNS = frozenset(("id", "customer_id", "status", "total", "created_at"))
ITEM_COLUMNS = frozenset(("id", "order_id", "product_id", "quantity", "unit_price"))


def _extra(row: dict[str, Any], known: frozenset[str]) -> tuple[tuple[str, Any], ...]:
    """The columns of ``row`` not in ``known`` (a value Debezium left out, a TOASTed column an
    update did not change, is left out: written as null)."""
    return tuple((k, v) for k, v in row.items() if k not in known and v is not UNCHANGED)


# -- decoding -----------------------------------------------------------------------------------


def _money(value: Any, column: str) -> Decimal | None:
    if value is None or value is UNCHANGED:
        return None
    try:
        if type(value) is Decimal:
            return value.quantize(CENTS, rounding=ROUND_HALF_EVEN)
        return Decimal(value).quantize(CENTS, rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ParseError("bad_decimal", f"{column}={value!r} is not an amount") from exc


def _int(value: Any, column: str) -> int | None:
    if value is None or value is UNCHANGED:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError("type_mismatch", f"{column}={value!r} is not an integer")
    return value


def _timestamp(value: Any, column: str) -> datetime | None:
    if value is None or value is UNCHANGED:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ParseError("type_mismatch", f"{column}={value!r} is not a timestamp") from exc
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise ParseError("type_mismatch", f"{column}={value!r} is not a timestamp")


class Decoder:
    """``decode(message) -> OrderChange | ItemChange | None`` for the runtime.

    Changes of ``orders`` and ``order_items`` are decoded; tombstones, heartbeats, transaction
    boundaries, truncates and other tables return ``None`` (skipped). Malformed records raise
    ``ParseError`` (dead-lettered). Records are read with ``Parser.parse_view``: the flat view
    of a change, without the ``Source`` / ``TransactionInfo`` objects the flusher never reads
    (the same checks and ids as ``parse_record``, in about half the time).
    """

    def __init__(
        self,
        parser: Parser | None = None,
        *,
        orders_table: str = "orders",
        items_table: str = "order_items",
    ) -> None:
        self._parser = parser or Parser(column_types=SHOP_COLUMN_TYPES)
        self._orders = orders_table
        self._items = items_table
        self._versions = Versions()

    def __call__(self, message: Message) -> Change | None:
        record = self._parser.parse_view(
            message.topic() or "",
            message.partition() or 0,
            message.offset() or 0,
            message.key(),
            message.value(),
            message.headers(),
        )
        if type(record) is not ChangeView or record.op not in ("c", "u", "r", "d"):
            return None
        table = record.table
        if table == self._orders:
            return self.order_change(record)
        if table == self._items:
            return self.item_change(record)
        return None

    @staticmethod
    def _event_time(event: ChangeView) -> int:
        ts = event.source_ts_ms if event.source_ts_ms is not None else event.ts_ms
        if ts is None:
            raise ParseError("missing_field", "change without source.ts_ms or ts_ms")
        return ts

    def order_change(self, event: ChangeView) -> OrderChange:
        deleted = event.op == "d"
        row = {} if deleted else (event.after or {})
        before = event.before if not event.before_is_key_only else None
        before_status = None
        if before is not None and isinstance(before.get("status"), str):
            before_status = before["status"]
        status = row.get("status")
        if not deleted and not isinstance(status, str):
            raise ParseError("missing_field", "orders change without a status")
        # The common types are taken as they are; anything else goes through the checks.
        customer = row.get("customer_id")
        if type(customer) is not int:
            customer = _int(customer, "customer_id")
        created = row.get("created_at")
        if type(created) is not datetime or created.tzinfo is None:
            created = _timestamp(created, "created_at")
        return OrderChange(
            order_id=integer_id(self._orders, event.key, event.row),
            customer_id=customer,
            status=None if deleted else status,
            total=_money(row.get("total"), "total"),
            created_at=created,
            deleted=deleted,
            op=event.op,
            source_ts_ms=self._event_time(event),
            offset=event.offset,
            version=self._versions.of(event),
            sweep=sweep_version(event),
            event_id=event.event_id,
            before_status=before_status,
            extra=_extra(row, ORDER_COLUMNS) if len(row) > len(ORDER_COLUMNS) else (),
        )

    def item_change(self, event: ChangeView) -> ItemChange:
        deleted = event.op == "d"
        row = {} if deleted else (event.after or {})
        order, product, quantity = row.get("order_id"), row.get("product_id"), row.get("quantity")
        if type(order) is not int:
            order = _int(order, "order_id")
        if type(product) is not int:
            product = _int(product, "product_id")
        if type(quantity) is not int:
            quantity = _int(quantity, "quantity")
        return ItemChange(
            item_id=integer_id(self._items, event.key, event.row),
            order_id=order,
            product_id=product,
            quantity=quantity,
            unit_price=_money(row.get("unit_price"), "unit_price"),
            deleted=deleted,
            op=event.op,
            source_ts_ms=self._event_time(event),
            offset=event.offset,
            version=self._versions.of(event),
            sweep=sweep_version(event),
            event_id=event.event_id,
            extra=_extra(row, ITEM_COLUMNS) if len(row) > len(ITEM_COLUMNS) else (),
        )
