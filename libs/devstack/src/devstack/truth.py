"""Ground truth: what each read model must contain, computed from the source database at rest
and from the simulator's activity log.

Each function is the reference a service's check compares against: a plain SQL query over the
shop tables (or a fold over the acknowledged user events), deliberately written independently of
any consumer code. Money is ``Decimal``; times are timezone-aware UTC ``datetime``; days are the
UTC calendar date of the order's ``created_at``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import psycopg2.extensions

from devstack._shop import SHOP_TABLES

ZERO = Decimal("0.00")
#: Key the simulator adds to the logged copy of an event it stamped with a lying clock: its own
#: clock at the send (ISO-8601), the earliest moment a consumer can have processed the event.
SENT_AT = "_sent_at"


@dataclass(frozen=True)
class CustomerStats:
    customer_id: int
    country: str | None
    orders_count: int
    paid_or_shipped_count: int
    cancelled_count: int
    total_spent: Decimal
    avg_order_value: Decimal | None
    first_order_at: datetime | None
    last_order_at: datetime | None


@dataclass(frozen=True)
class ProductStats:
    product_id: int
    name: str | None
    price: Decimal | None
    stock: int | None
    units_sold: int
    revenue: Decimal
    low_stock: bool
    deleted: bool


@dataclass(frozen=True)
class DailySales:
    day: date
    orders: int
    revenue: Decimal


@dataclass
class UserStats:
    user_id: str
    total_events: int = 0
    total_purchases: int = 0
    total_spent: Decimal = ZERO
    last_active: datetime | None = None
    durations: list[Decimal] = field(default_factory=list)

    @property
    def avg_session_duration(self) -> Decimal | None:
        if not self.durations:
            return None
        return sum(self.durations, Decimal(0)) / len(self.durations)


def _rows(
    conn: psycopg2.extensions.connection, sql: str, args: Iterable[Any] = ()
) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, tuple(args))
        return list(cur.fetchall())


def row_counts(conn: psycopg2.extensions.connection) -> dict[str, int]:
    counts = {}
    for table in SHOP_TABLES:
        counts[table] = int(_rows(conn, f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608
    return counts


def customer_stats(conn: psycopg2.extensions.connection) -> dict[int, CustomerStats]:
    """Per customer; ``total_spent`` and the average count only non-cancelled orders.

    Customers without orders are included (zero counts), because the read model learns their
    country from the ``customers`` topic.
    """
    sql = """
    SELECT c.id, c.country,
           count(o.id),
           count(o.id) FILTER (WHERE o.status IN ('paid', 'shipped')),
           count(o.id) FILTER (WHERE o.status = 'cancelled'),
           coalesce(sum(o.total) FILTER (WHERE o.status <> 'cancelled'), 0),
           count(o.id) FILTER (WHERE o.status <> 'cancelled'),
           min(o.created_at), max(o.created_at)
    FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
    GROUP BY c.id, c.country
    """
    out: dict[int, CustomerStats] = {}
    for cid, country, n, paid, cancelled, spent_raw, live, first, last in _rows(conn, sql):
        spent = Decimal(spent_raw).quantize(ZERO)
        out[cid] = CustomerStats(
            customer_id=cid,
            country=country,
            orders_count=n,
            paid_or_shipped_count=paid,
            cancelled_count=cancelled,
            total_spent=spent,
            avg_order_value=(spent / live).quantize(ZERO) if live else None,
            first_order_at=first,
            last_order_at=last,
        )
    return out


def product_stats(
    conn: psycopg2.extensions.connection, low_stock_threshold: int = 10
) -> dict[int, ProductStats]:
    """Per product ever seen (present in ``products`` or referenced by an order line).

    ``units_sold``/``revenue`` count order lines whose order is not cancelled; a product that
    is referenced but no longer in ``products`` is ``deleted`` with unknown stock/price/name.
    """
    sql = """
    WITH sold AS (
        SELECT i.product_id,
               sum(i.quantity) AS units,
               sum(i.quantity * i.unit_price) AS revenue
        FROM order_items i JOIN orders o ON o.id = i.order_id
        WHERE o.status <> 'cancelled'
        GROUP BY i.product_id
    ), ids AS (
        SELECT id FROM products UNION SELECT product_id FROM order_items
    )
    SELECT ids.id, p.id IS NULL, p.name, p.price, p.stock,
           coalesce(sold.units, 0), coalesce(sold.revenue, 0)
    FROM ids LEFT JOIN products p ON p.id = ids.id LEFT JOIN sold ON sold.product_id = ids.id
    """
    out: dict[int, ProductStats] = {}
    for pid, deleted, name, price, stock, units, revenue in _rows(conn, sql):
        out[pid] = ProductStats(
            product_id=pid,
            name=name,
            price=price,
            stock=stock,
            units_sold=int(units),
            revenue=Decimal(revenue).quantize(ZERO),
            low_stock=stock is not None and stock < low_stock_threshold,
            deleted=bool(deleted),
        )
    return out


def order_status_counts(conn: psycopg2.extensions.connection) -> dict[str, int]:
    return {s: int(n) for s, n in _rows(conn, "SELECT status, count(*) FROM orders GROUP BY 1")}


def daily_sales(conn: psycopg2.extensions.connection) -> dict[date, DailySales]:
    """Non-cancelled orders per UTC day of ``created_at``."""
    sql = """
    SELECT (created_at AT TIME ZONE 'UTC')::date, count(*), sum(total)
    FROM orders WHERE status <> 'cancelled' GROUP BY 1
    """
    return {d: DailySales(d, int(n), Decimal(r).quantize(ZERO)) for d, n, r in _rows(conn, sql)}


def product_sales_by_day(
    conn: psycopg2.extensions.connection,
) -> dict[tuple[date, int], tuple[int, Decimal]]:
    """(UTC order day, product) -> (units, revenue) over non-cancelled orders: the data lake's
    product report summed over windows."""
    sql = """
    SELECT (o.created_at AT TIME ZONE 'UTC')::date, i.product_id, sum(i.quantity),
           sum(i.quantity * i.unit_price)
    FROM order_items i JOIN orders o ON o.id = i.order_id
    WHERE o.status <> 'cancelled' GROUP BY 1, 2
    """
    return {(d, p): (int(u), Decimal(r).quantize(ZERO)) for d, p, u, r in _rows(conn, sql)}


def customer_spend_by_day(
    conn: psycopg2.extensions.connection,
) -> dict[tuple[date, int], tuple[int, Decimal]]:
    """(UTC order day, customer) -> (orders, spend) over non-cancelled orders."""
    sql = """
    SELECT (created_at AT TIME ZONE 'UTC')::date, customer_id, count(*), sum(total)
    FROM orders WHERE status <> 'cancelled' GROUP BY 1, 2
    """
    return {(d, c): (int(n), Decimal(s).quantize(ZERO)) for d, c, n, s in _rows(conn, sql)}


def search_documents(conn: psycopg2.extensions.connection) -> dict[int, dict[str, Any]]:
    """The products a search index must hold, keyed by id (deleted products absent)."""
    sql = "SELECT id, name, description, price, stock, updated_at FROM products"
    return {
        pid: {
            "id": pid,
            "name": name,
            "description": desc,
            "price": price,
            "stock": stock,
            "in_stock": stock > 0,
            "updated_at": updated,
        }
        for pid, name, desc, price, stock, updated in _rows(conn, sql)
    }


def read_activity_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def user_stats(events: Iterable[dict[str, Any]]) -> dict[str, UserStats]:
    """Fold acknowledged user events (deduplicated by ``event_id``) into per-user stats."""
    seen: set[str] = set()
    out: dict[str, UserStats] = defaultdict(lambda: UserStats(""))
    for event in events:
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        stats = out[event["user_id"]]
        stats.user_id = event["user_id"]
        stats.total_events += 1
        if event["event_type"] == "purchase":
            stats.total_purchases += 1
            stats.total_spent += Decimal(str(event["amount"])).quantize(ZERO)
        ts = datetime.fromisoformat(event["timestamp"])
        if stats.last_active is None or ts > stats.last_active:
            stats.last_active = ts
        if event.get("duration") is not None:
            stats.durations.append(Decimal(str(event["duration"])))
    return dict(out)


def activity_watermark(
    events: Iterable[dict[str, Any]], now: datetime, max_clock_skew: timedelta
) -> datetime | None:
    """The "as of" of the user-activity scores: the latest event time, each time capped at
    ``now + max_clock_skew`` (an event stamped further ahead of the processing clock is
    clock-skewed or bogus and moves the watermark no further than that), over the events
    deduplicated by ``event_id``. None without events.

    ``now`` stands for the time the events were processed; the reference takes the time of the
    check, which is the same for every event that was not ahead of the clock when processed
    (all the simulator sends on its own clock: the clock they are consumed by). For an event
    that was, the consumer holds the bound of the moment it processed it, which only the
    consumer knows; an event the simulator stamped with a lying clock carries the time it was
    sent (``SENT_AT``), the earliest the consumer can have processed it, so it counts as at
    most ``sent + max_clock_skew``. That equals the consumer's as-of whenever on-time events
    later than every such bound followed (then the latest of those is the as-of): the chaos
    run's ``clock_skew`` fault lasts until they did. Otherwise the consumer's bound is later
    than this one by the time it took to process the event.
    """
    bound = now + max_clock_skew
    latest: datetime | None = None
    seen: set[str] = set()
    for event in events:
        if event["event_id"] in seen:
            continue  # a resend counts as the first one, as in ``user_stats``
        seen.add(event["event_id"])
        ts = _aware(datetime.fromisoformat(event["timestamp"]))
        sent = event.get(SENT_AT)
        if isinstance(sent, str):
            ts = min(ts, min(now, _aware(datetime.fromisoformat(sent))) + max_clock_skew)
        ts = min(ts, bound)
        if latest is None or ts > latest:
            latest = ts
    return latest


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
