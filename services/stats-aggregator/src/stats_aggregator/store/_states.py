"""The per-key states' SQL: loading and writing each source key's latest row image with its
position (``st_customers``, ``st_products``, ``st_orders``, ``st_order_items``).

Part of ``store`` (see ``_read_model``): every function takes an open connection inside the
batch's transaction; writes are one statement per table and batch
(``sink_kit.upsert.upsert_rows``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Final

import sqlalchemy as sa
from sink_kit.upsert import upsert_rows
from sqlalchemy.engine import Connection

from stats_aggregator._model import IMAGE_TYPES, Item, Stored, Transition

# Per source table: its state table and the PostgreSQL types of the image's columns.
STATE_TABLES: Final[dict[str, tuple[str, tuple[tuple[str, str], ...]]]] = {
    "customers": ("st_customers", (("country", "text"),)),
    "products": (
        "st_products",
        (("name", "text"), ("price", "numeric"), ("stock", "integer")),
    ),
    "orders": (
        "st_orders",
        (
            ("customer_id", "bigint"),
            ("status", "text"),
            ("total", "numeric"),
            ("created_at", "timestamptz"),
        ),
    ),
    "order_items": (
        "st_order_items",
        (
            ("order_id", "bigint"),
            ("product_id", "bigint"),
            ("quantity", "integer"),
            ("unit_price", "numeric"),
        ),
    ),
}


def load_states(conn: Connection, table: str, keys: Collection[int]) -> dict[int, Stored[Any]]:
    """The stored state of ``keys`` (absent keys were never seen)."""
    if not keys:
        return {}
    name, columns = STATE_TABLES[table]
    cls = IMAGE_TYPES[table]
    cols = ", ".join(c for c, _ in columns)
    rows = conn.execute(
        sa.text(
            f"SELECT id, {cols}, deleted, pos_version, pos_lsn FROM {name} WHERE id = ANY(:ids)"  # noqa: S608
        ),
        {"ids": list(keys)},
    )
    out: dict[int, Stored[Any]] = {}
    for row in rows:
        image = None if row[-3] else cls(*row[1:-3])
        out[int(row[0])] = Stored(image, row[-2], row[-1])
    return out


def load_lines(conn: Connection, order_ids: Collection[int]) -> dict[int, Item]:
    """The stored (not deleted) order lines of ``order_ids``, by line id."""
    if not order_ids:
        return {}
    rows = conn.execute(
        sa.text(
            "SELECT id, order_id, product_id, quantity, unit_price FROM st_order_items "
            "WHERE order_id = ANY(:ids) AND NOT deleted"
        ),
        {"ids": list(order_ids)},
    )
    return {int(r[0]): Item(int(r[1]), int(r[2]), int(r[3]), r[4]) for r in rows}


def save_states(conn: Connection, table: str, transitions: Iterable[Transition[Any]]) -> None:
    """Upsert each key's new state with its position: ``pos_version`` (compared) and ``pos_lsn``
    (for the alerts and a downgrade; moving it without the version marks a write of the previous
    release, see migration 0004)."""
    name, columns = STATE_TABLES[table]
    width = len(columns)
    rows = [
        (
            t.key,
            *(t.new if t.new is not None else (None,) * width),
            t.new is None,
            t.version,
            t.lsn,
        )
        for t in transitions
    ]
    upsert_rows(
        conn,
        name,
        [
            ("id", "bigint"),
            *columns,
            ("deleted", "boolean"),
            ("pos_version", "text"),
            ("pos_lsn", "bigint"),
        ],
        rows,
        ["id"],
    )
