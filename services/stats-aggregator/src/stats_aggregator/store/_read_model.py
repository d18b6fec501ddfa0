"""The read model's SQL: statistic rows, user activity, alerts, and
``PgStore`` (``domain.StateStore`` over a connection).

Part of ``store`` (the only package that speaks SQL). Every function takes an open connection
inside the batch's transaction; writes are one statement per table and batch
(``sink_kit.upsert.upsert_rows``). The per-key states' SQL is in ``_states``, the sweeps'
(``domain.sweep``) in ``_sweeps``; ``PgStore`` joins them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime
from typing import Any, Final

import orjson
import sqlalchemy as sa
from sink_kit.upsert import upsert_rows
from sqlalchemy.engine import Connection

from stats_aggregator._model import (
    CustomerRow,
    DayRow,
    Item,
    LowStockAlert,
    ProductRow,
    Stored,
    Transition,
    UserTotals,
)
from stats_aggregator.store._states import load_lines, load_states, save_states
from stats_aggregator.store._sweeps import live_keys_below, load_sweeps, save_sweep

# -- statistics ---------------------------------------------------------------------------


_CUSTOMER_COLUMNS: Final = (
    ("customer_id", "bigint"),
    ("known", "boolean"),
    ("country", "text"),
    ("orders_count", "integer"),
    ("paid_or_shipped_count", "integer"),
    ("cancelled_count", "integer"),
    ("total_spent", "numeric"),
    ("live_orders", "integer"),
    ("avg_order_value", "numeric"),
    ("first_order_at", "timestamptz"),
    ("last_order_at", "timestamptz"),
)
_PRODUCT_COLUMNS: Final = (
    ("product_id", "bigint"),
    ("name", "text"),
    ("price", "numeric"),
    ("stock", "integer"),
    ("low_stock", "boolean"),
    ("deleted", "boolean"),
    ("units_sold", "bigint"),
    ("revenue", "numeric"),
    ("item_refs", "integer"),
)
_NOW: Final = {"updated_at": "now()"}


def _select(conn: Connection, table: str, columns: Iterable[str], key: str, keys: list[Any]) -> Any:
    return conn.execute(
        sa.text(f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = ANY(:keys)"),  # noqa: S608
        {"keys": keys},
    )


def load_customer_rows(conn: Connection, keys: Collection[int]) -> dict[int, CustomerRow]:
    if not keys:
        return {}
    rows = _select(
        conn, "customer_stats", [c for c, _ in _CUSTOMER_COLUMNS], "customer_id", list(keys)
    )
    return {int(r[0]): CustomerRow(*r) for r in rows}


def load_product_rows(conn: Connection, keys: Collection[int]) -> dict[int, ProductRow]:
    if not keys:
        return {}
    rows = _select(
        conn, "product_stats", [c for c, _ in _PRODUCT_COLUMNS], "product_id", list(keys)
    )
    return {int(r[0]): ProductRow(*r) for r in rows}


def load_day_rows(conn: Connection, days: Collection[date]) -> dict[date, DayRow]:
    if not days:
        return {}
    rows = _select(conn, "daily_sales", ["day", "orders", "revenue"], "day", list(days))
    return {r[0]: DayRow(r[0], int(r[1]), r[2]) for r in rows}


def load_status_counts(conn: Connection) -> dict[str, int]:
    return {
        s: int(n) for s, n in conn.execute(sa.text("SELECT status, count FROM order_status_counts"))
    }


def _delete(conn: Connection, table: str, key: str, keys: list[Any]) -> None:
    if keys:
        conn.execute(sa.text(f"DELETE FROM {table} WHERE {key} = ANY(:keys)"), {"keys": keys})  # noqa: S608


def save_customer_rows(conn: Connection, rows: Iterable[CustomerRow]) -> None:
    keep, drop = _split(rows)
    sets = {c: f"excluded.{c}" for c, _ in _CUSTOMER_COLUMNS[1:]} | _NOW
    upsert_rows(
        conn,
        "customer_stats",
        _CUSTOMER_COLUMNS,
        [
            (
                r.customer_id,
                r.known,
                r.country,
                r.orders_count,
                r.paid_or_shipped_count,
                r.cancelled_count,
                r.total_spent,
                r.live_orders,
                r.avg_order_value,
                r.first_order_at,
                r.last_order_at,
            )
            for r in keep
        ],
        ["customer_id"],
        sets,
    )
    _delete(conn, "customer_stats", "customer_id", [r.customer_id for r in drop])


def save_product_rows(conn: Connection, rows: Iterable[ProductRow]) -> None:
    keep, drop = _split(rows)
    sets = {c: f"excluded.{c}" for c, _ in _PRODUCT_COLUMNS[1:]} | _NOW
    upsert_rows(
        conn,
        "product_stats",
        _PRODUCT_COLUMNS,
        [
            (
                r.product_id,
                r.name,
                r.price,
                r.stock,
                r.low_stock,
                r.deleted,
                r.units_sold,
                r.revenue,
                r.item_refs,
            )
            for r in keep
        ],
        ["product_id"],
        sets,
    )
    _delete(conn, "product_stats", "product_id", [r.product_id for r in drop])


def save_day_rows(conn: Connection, rows: Iterable[DayRow]) -> None:
    rows = list(rows)
    upsert_rows(
        conn,
        "daily_sales",
        [("day", "date"), ("orders", "bigint"), ("revenue", "numeric")],
        [(r.day, r.orders, r.revenue) for r in rows if r.orders > 0],
        ["day"],
    )
    _delete(conn, "daily_sales", "day", [r.day for r in rows if r.orders <= 0])


def save_status_counts(conn: Connection, counts: Mapping[str, int]) -> None:
    upsert_rows(
        conn,
        "order_status_counts",
        [("status", "text"), ("count", "bigint")],
        [(s, n) for s, n in counts.items() if n > 0],
        ["status"],
    )
    _delete(conn, "order_status_counts", "status", [s for s, n in counts.items() if n <= 0])


def recount_first_last(conn: Connection, customers: Collection[int]) -> None:
    """Recompute first/last order times from the order states (after an order vanished)."""
    if not customers:
        return
    conn.execute(
        sa.text(
            "UPDATE customer_stats c SET first_order_at = s.first, last_order_at = s.last "
            "FROM (SELECT k.id, min(o.created_at) AS first, max(o.created_at) AS last "
            "      FROM unnest(CAST(:ids AS bigint[])) AS k(id) "
            "      LEFT JOIN st_orders o ON o.customer_id = k.id AND NOT o.deleted "
            "      GROUP BY k.id) s "
            "WHERE c.customer_id = s.id"
        ),
        {"ids": list(customers)},
    )


def _split(rows: Iterable[Any]) -> tuple[list[Any], list[Any]]:
    keep: list[Any] = []
    drop: list[Any] = []
    for r in rows:
        (keep if r.visible else drop).append(r)
    return keep, drop


# -- user activity, alerts ----------------------------------------------------------------


def new_event_ids(conn: Connection, event_ids: list[str]) -> set[str]:
    """Record ``event_ids``; return those not seen before (the others are duplicates)."""
    rows = upsert_rows(
        conn,
        "user_event_ids",
        [("event_id", "text")],
        [(e,) for e in event_ids],
        ["event_id"],
        {},
        returning="event_id",
    )
    return {r[0] for r in rows}


def add_user_totals(conn: Connection, totals: Iterable[UserTotals]) -> None:
    upsert_rows(
        conn,
        "user_activity_stats",
        [
            ("user_id", "text"),
            ("total_events", "bigint"),
            ("total_purchases", "bigint"),
            ("total_spent", "numeric"),
            ("last_active", "timestamptz"),
            ("duration_sum", "numeric"),
            ("duration_count", "bigint"),
        ],
        [
            (
                u.user_id,
                u.total_events,
                u.total_purchases,
                u.total_spent,
                u.last_active,
                u.duration_sum,
                u.duration_count,
            )
            for u in totals
        ],
        ["user_id"],
        {
            "total_events": "t.total_events + excluded.total_events",
            "total_purchases": "t.total_purchases + excluded.total_purchases",
            "total_spent": "t.total_spent + excluded.total_spent",
            "last_active": "GREATEST(t.last_active, excluded.last_active)",
            "duration_sum": "t.duration_sum + excluded.duration_sum",
            "duration_count": "t.duration_count + excluded.duration_count",
        },
    )


def advance_watermark(conn: Connection, latest: datetime, bound: datetime) -> None:
    """Move the activity watermark up to ``latest``, never past ``bound`` (the processing
    clock + MAX_CLOCK_SKEW): a value already stored beyond it (a skewed event applied before
    the rule existed) is pulled back to ``bound``, so a poisoned watermark heals on the next
    batch of user events."""
    conn.execute(
        sa.text(
            "INSERT INTO activity_watermark AS w (id, max_event_at) "
            "VALUES (1, LEAST(CAST(:at AS timestamptz), CAST(:bound AS timestamptz))) "
            "ON CONFLICT (id) DO UPDATE SET max_event_at = "
            "LEAST(GREATEST(w.max_event_at, excluded.max_event_at), CAST(:bound AS timestamptz))"
        ),
        {"at": latest, "bound": bound},
    )


def insert_alerts(conn: Connection, alerts: Iterable[LowStockAlert]) -> None:
    upsert_rows(
        conn,
        "low_stock_alerts",
        [
            ("event_id", "text"),
            ("product_id", "bigint"),
            ("stock", "integer"),
            ("threshold", "integer"),
            ("source_lsn", "bigint"),
            ("source_version", "text"),
            ("source_ts_ms", "bigint"),
            ("message", "jsonb"),
        ],
        [
            (
                a.event_id,
                a.product_id,
                a.stock,
                a.threshold,
                a.lsn,
                a.version,
                a.source_ts_ms,
                orjson.dumps(a.to_message()).decode(),
            )
            for a in alerts
        ],
        ["event_id"],
        {},
    )


class PgStore:
    """``domain.StateStore`` over one connection inside the batch's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def load_states(self, table: str, keys: Collection[int]) -> dict[int, Stored[Any]]:
        return load_states(self.conn, table, keys)

    def live_keys_below(self, table: str, version: str, after: int, limit: int) -> list[int]:
        return live_keys_below(self.conn, table, version, after, limit)

    def load_sweeps(self) -> dict[str, str]:
        return load_sweeps(self.conn)

    def save_sweep(self, table: str, version: str) -> None:
        save_sweep(self.conn, table, version)

    def load_lines(self, order_ids: Collection[int]) -> dict[int, Item]:
        return load_lines(self.conn, order_ids)

    def save_states(self, table: str, transitions: Collection[Transition[Any]]) -> None:
        save_states(self.conn, table, transitions)

    def load_customer_rows(self, keys: Collection[int]) -> dict[int, CustomerRow]:
        return load_customer_rows(self.conn, keys)

    def save_customer_rows(self, rows: Collection[CustomerRow]) -> None:
        save_customer_rows(self.conn, rows)

    def recount_first_last(self, customers: Collection[int]) -> None:
        recount_first_last(self.conn, customers)

    def load_product_rows(self, keys: Collection[int]) -> dict[int, ProductRow]:
        return load_product_rows(self.conn, keys)

    def save_product_rows(self, rows: Collection[ProductRow]) -> None:
        save_product_rows(self.conn, rows)

    def load_day_rows(self, days: Collection[date]) -> dict[date, DayRow]:
        return load_day_rows(self.conn, days)

    def save_day_rows(self, rows: Collection[DayRow]) -> None:
        save_day_rows(self.conn, rows)

    def load_status_counts(self) -> dict[str, int]:
        return load_status_counts(self.conn)

    def save_status_counts(self, counts: Mapping[str, int]) -> None:
        save_status_counts(self.conn, counts)
