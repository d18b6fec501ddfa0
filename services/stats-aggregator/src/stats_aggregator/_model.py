"""The aggregator's data model: decoded records, row images, per-key state and statistic rows.

Pure values shared by the decoder, the domain logic and the sink. Row images are
``NamedTuple``s holding only the columns a statistic depends on; everything else of a source
row (descriptions, e-mails, ...) is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final, Generic, NamedTuple, TypeVar

ZERO: Final = Decimal("0.00")
CENTS: Final = Decimal("0.01")
CANCELLED: Final = "cancelled"
PAID_OR_SHIPPED: Final = frozenset({"paid", "shipped"})


class Customer(NamedTuple):
    country: str | None


class Product(NamedTuple):
    name: str | None
    price: Decimal | None
    stock: int | None


class Order(NamedTuple):
    customer_id: int
    status: str
    total: Decimal
    created_at: datetime

    @property
    def live(self) -> bool:
        """Counts towards spend, sales and units sold (not cancelled)."""
        return self.status != CANCELLED

    @property
    def day(self) -> date:
        """The UTC calendar day of the order's creation (``daily_sales``)."""
        return self.created_at.astimezone(UTC).date()


class Item(NamedTuple):
    order_id: int
    product_id: int
    quantity: int
    unit_price: Decimal


I = TypeVar("I", Customer, Product, Order, Item)  # noqa: E741  (an image type)

#: Source table -> the image type holding the columns the statistics need.
IMAGE_TYPES: Final[dict[str, type[Any]]] = {
    "customers": Customer,
    "products": Product,
    "orders": Order,
    "order_items": Item,
}
TABLES: Final = tuple(IMAGE_TYPES)


@dataclass(frozen=True, slots=True)
class RowChange:
    """One decoded change of a shop row (``c``/``u``/``r``/``d``).

    ``values`` is the row after the change, in the image's column order (a column Debezium
    could not see holds ``cdc_events.UNCHANGED`` and ``partial`` is set); ``None`` for a delete,
    whose ``before`` holds only the key under the default replica identity and is not used.
    ``version`` (``cdc_events.source_version``) is the change's place in its row's history,
    text compared byte-wise: re-emits and replays are dropped per key by it. ``lsn`` is the
    source LSN (for the alerts' ``source.lsn`` and rows stored before versions). ``sweep``
    (``cdc_events.sweep_version``) is set on a snapshot's last read of its table: the table's
    rows whose version is below it were not read by that snapshot nor changed after it.
    """

    table: str
    key: int
    op: str
    values: tuple[Any, ...] | None
    version: str
    lsn: int | None
    event_id: str
    source_ts_ms: int | None
    partition: int
    offset: int
    partial: bool = False
    sweep: str | None = None


@dataclass(frozen=True, slots=True)
class UserEvent:
    """One decoded user-activity event (the ``user-events`` topic)."""

    event_id: str
    user_id: str
    event_type: str
    timestamp: datetime
    amount: Decimal | None
    duration: Decimal | None
    partition: int
    offset: int

    @property
    def source_ts_ms(self) -> int:
        """When the front end saw the event (the runtime's end-to-end latency metric)."""
        return int(self.timestamp.timestamp() * 1000)


Record = RowChange | UserEvent


@dataclass(frozen=True, slots=True)
class Stored(Generic[I]):
    """A key's state as last applied: its row image (``None`` once deleted) and position.

    ``version`` is the source version of the change that produced it; ``None`` for a state
    stored before versions (migration 0004) and not changed since, whose position is ``lsn``
    alone (see ``domain.is_reemit``).
    """

    image: I | None
    version: str | None
    lsn: int | None


@dataclass(frozen=True, slots=True)
class Transition(Generic[I]):
    """What a batch did to one key: the image before it, the image after it, the position
    (version and LSN) of the last change applied."""

    key: int
    old: I | None
    new: I | None
    version: str
    lsn: int | None


@dataclass(frozen=True, slots=True)
class LowStockAlert:
    """A product's stock went below the threshold (one per crossing, keyed by the change)."""

    product_id: int
    stock: int
    threshold: int
    lsn: int | None
    version: str
    event_id: str
    source_ts_ms: int | None

    def to_message(self) -> dict[str, Any]:
        """The alert message's JSON value; ``event_id`` lets a consumer drop repeats and
        ``version`` order one product's alerts (``lsn`` alone cannot: see ``RowChange``)."""
        return {
            "product_id": self.product_id,
            "stock": self.stock,
            "threshold": self.threshold,
            "source": {
                "lsn": self.lsn,
                "version": self.version,
                "event_id": self.event_id,
                "ts_ms": self.source_ts_ms,
            },
        }


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A ``customer_stats`` row. ``known``: the customer is in the ``customers`` table."""

    customer_id: int
    known: bool
    country: str | None
    orders_count: int
    paid_or_shipped_count: int
    cancelled_count: int
    total_spent: Decimal
    live_orders: int
    avg_order_value: Decimal | None
    first_order_at: datetime | None
    last_order_at: datetime | None

    @property
    def visible(self) -> bool:
        return self.known or self.orders_count > 0


@dataclass(frozen=True, slots=True)
class ProductRow:
    """A ``product_stats`` row. ``item_refs``: order lines referencing the product."""

    product_id: int
    name: str | None
    price: Decimal | None
    stock: int | None
    low_stock: bool
    deleted: bool
    units_sold: int
    revenue: Decimal
    item_refs: int

    @property
    def visible(self) -> bool:
        return not self.deleted or self.item_refs > 0


@dataclass(frozen=True, slots=True)
class DayRow:
    """A ``daily_sales`` row: non-cancelled orders created on ``day`` (UTC)."""

    day: date
    orders: int
    revenue: Decimal


@dataclass(frozen=True, slots=True)
class UserTotals:
    """Per-user sums of one batch's new events (added to ``user_activity_stats``)."""

    user_id: str
    total_events: int
    total_purchases: int
    total_spent: Decimal
    last_active: datetime
    duration_sum: Decimal
    duration_count: int
