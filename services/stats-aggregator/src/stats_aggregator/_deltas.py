"""Steps 2 and 3 of a batch (see ``domain``): statistic deltas from per-key transitions, and
old statistic rows + deltas -> new rows. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from stats_aggregator._model import (
    CANCELLED,
    CENTS,
    PAID_OR_SHIPPED,
    ZERO,
    Customer,
    CustomerRow,
    DayRow,
    Item,
    Order,
    Product,
    ProductRow,
    Transition,
)

# -- 2. deltas --------------------------------------------------------------------------------


def is_live(order: Order | None) -> bool:
    return order is not None and order.status != CANCELLED


def order_ids_of_items(items: Mapping[int, Transition[Item]]) -> set[int]:
    """Orders whose state the changed lines' contributions depend on (load them first)."""
    out: set[int] = set()
    for t in items.values():
        for image in (t.old, t.new):
            if image is not None:
                out.add(image.order_id)
    return out


def flipped_orders(orders: Mapping[int, Transition[Order]]) -> set[int]:
    """Orders whose liveness changed: their other lines' contributions move too (load them)."""
    return {k for k, t in orders.items() if is_live(t.old) != is_live(t.new)}


@dataclass(slots=True)
class CustomerDelta:
    orders: int = 0
    paid_or_shipped: int = 0
    cancelled: int = 0
    spent: Decimal = ZERO
    live: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def add(self, order: Order, sign: int) -> None:
        self.orders += sign
        self.paid_or_shipped += sign * (order.status in PAID_OR_SHIPPED)
        self.cancelled += sign * (order.status == CANCELLED)
        if order.live:
            self.spent += sign * order.total
            self.live += sign
        if sign > 0:
            at = order.created_at
            self.first = at if self.first is None else min(self.first, at)
            self.last = at if self.last is None else max(self.last, at)


@dataclass(slots=True)
class ProductDelta:
    units: int = 0
    revenue: Decimal = ZERO
    refs: int = 0


@dataclass(slots=True)
class DayDelta:
    orders: int = 0
    revenue: Decimal = ZERO


@dataclass(slots=True)
class Deltas:
    """Everything one batch changes in the statistics, keyed like the statistic tables."""

    customers: dict[int, CustomerDelta] = field(default_factory=dict)
    #: Changed customers: their new image, ``None`` once deleted.
    customer_attrs: dict[int, Customer | None] = field(default_factory=dict)
    products: dict[int, ProductDelta] = field(default_factory=dict)
    #: Changed products: their new image, ``None`` once deleted.
    product_attrs: dict[int, Product | None] = field(default_factory=dict)
    days: dict[date, DayDelta] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    #: Customers that lost an order or whose order moved in time: min/max need a recount.
    recount_first_last: set[int] = field(default_factory=set)

    def customer_keys(self) -> set[int]:
        return set(self.customers) | set(self.customer_attrs)

    def product_keys(self) -> set[int]:
        return set(self.products) | set(self.product_attrs)


def compute_deltas(
    customers: Mapping[int, Transition[Customer]],
    products: Mapping[int, Transition[Product]],
    orders: Mapping[int, Transition[Order]],
    items: Mapping[int, Transition[Item]],
    orders_before: Mapping[int, Order | None],
    lines_of_flipped: Mapping[int, Item],
) -> Deltas:
    """The statistics' change from the batch's transitions.

    ``orders_before``: the stored (pre-batch) image of every order in
    ``order_ids_of_items(items)``; ``lines_of_flipped``: the stored lines of the orders in
    ``flipped_orders(orders)`` (lines changed by the batch are taken from ``items``).
    """
    d = Deltas()
    old_orders: dict[int, Order | None] = dict(orders_before)
    old_orders.update({k: t.old for k, t in orders.items()})
    new_orders: dict[int, Order | None] = dict(old_orders)
    new_orders.update({k: t.new for k, t in orders.items()})

    for k, c in customers.items():
        d.customer_attrs[k] = c.new
    for k, p in products.items():
        d.product_attrs[k] = p.new

    for t in orders.values():
        for order, sign in ((t.old, -1), (t.new, 1)):
            if order is None:
                continue
            d.customers.setdefault(order.customer_id, CustomerDelta()).add(order, sign)
            d.statuses[order.status] = d.statuses.get(order.status, 0) + sign
            if order.live:
                day = d.days.setdefault(order.day, DayDelta())
                day.orders += sign
                day.revenue += sign * order.total
        old, new = t.old, t.new
        if old is not None and (
            new is None or new.customer_id != old.customer_id or new.created_at != old.created_at
        ):
            d.recount_first_last.add(old.customer_id)

    def line(item: Item | None, order: Order | None, sign: int, refs: bool) -> None:
        if item is None:
            return
        delta = d.products.setdefault(item.product_id, ProductDelta())
        if refs:
            delta.refs += sign
        if is_live(order):
            delta.units += sign * item.quantity
            delta.revenue += sign * item.quantity * item.unit_price

    for it in items.values():
        line(it.old, None if it.old is None else old_orders.get(it.old.order_id), -1, True)
        line(it.new, None if it.new is None else new_orders.get(it.new.order_id), 1, True)
    for k, item in lines_of_flipped.items():
        if k in items:
            continue
        line(item, old_orders.get(item.order_id), -1, False)
        line(item, new_orders.get(item.order_id), 1, False)
    return d


# -- 3. apply ---------------------------------------------------------------------------------


def average(total: Decimal, count: int) -> Decimal | None:
    """Mean order value to the cent (half-even, like ``Decimal.quantize``), None without orders."""
    return (total / count).quantize(CENTS) if count else None


def apply_customer(
    key: int, old: CustomerRow | None, delta: CustomerDelta | None, deltas: Deltas
) -> CustomerRow:
    row = old or CustomerRow(key, False, None, 0, 0, 0, ZERO, 0, None, None, None)
    known, country = row.known, row.country
    if key in deltas.customer_attrs:
        image = deltas.customer_attrs[key]
        known, country = image is not None, None if image is None else image.country
    if delta is None:
        return CustomerRow(
            key, known, country, row.orders_count, row.paid_or_shipped_count,
            row.cancelled_count, row.total_spent, row.live_orders, row.avg_order_value,
            row.first_order_at, row.last_order_at,
        )  # fmt: skip
    spent = (row.total_spent + delta.spent).quantize(CENTS)
    live = row.live_orders + delta.live
    first, last = row.first_order_at, row.last_order_at
    if delta.first is not None:
        first = delta.first if first is None else min(first, delta.first)
    if delta.last is not None:
        last = delta.last if last is None else max(last, delta.last)
    return CustomerRow(
        customer_id=key,
        known=known,
        country=country,
        orders_count=row.orders_count + delta.orders,
        paid_or_shipped_count=row.paid_or_shipped_count + delta.paid_or_shipped,
        cancelled_count=row.cancelled_count + delta.cancelled,
        total_spent=spent,
        live_orders=live,
        avg_order_value=average(spent, live),
        first_order_at=first,
        last_order_at=last,
    )


def apply_product(
    key: int, old: ProductRow | None, delta: ProductDelta | None, deltas: Deltas, threshold: int
) -> ProductRow:
    row = old or ProductRow(key, None, None, None, False, True, 0, ZERO, 0)
    name, price, stock, deleted = row.name, row.price, row.stock, row.deleted
    if key in deltas.product_attrs:
        image = deltas.product_attrs[key]
        if image is None:
            name, price, stock, deleted = None, None, None, True
        else:
            name, price, stock, deleted = image.name, image.price, image.stock, False
    units, revenue, refs = row.units_sold, row.revenue, row.item_refs
    if delta is not None:
        units += delta.units
        revenue = (revenue + delta.revenue).quantize(CENTS)
        refs += delta.refs
    return ProductRow(
        product_id=key,
        name=name,
        price=price,
        stock=stock,
        low_stock=stock is not None and stock < threshold,
        deleted=deleted,
        units_sold=units,
        revenue=revenue,
        item_refs=refs,
    )


def apply_day(day: date, old: DayRow | None, delta: DayDelta) -> DayRow:
    row = old or DayRow(day, 0, ZERO)
    return DayRow(day, row.orders + delta.orders, (row.revenue + delta.revenue).quantize(CENTS))


def apply_status_counts(old: Mapping[str, int], delta: Mapping[str, int]) -> dict[str, int]:
    """New counts of the statuses in ``delta`` (0 = the status no longer occurs)."""
    return {s: old.get(s, 0) + n for s, n in delta.items()}
