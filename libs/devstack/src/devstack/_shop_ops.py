"""The shop's OLTP operations, mixed into ``ShopSimulator`` (``devstack.simulator``).

Each operation is one source transaction's statements, as a web shop would commit them:
sign-ups, profile changes, new products, restocks, price/name/description changes, orders placed
with their items (decrementing stock in the same transaction), paid, shipped or cancelled
(restoring stock), occasional product deletes and re-creates. ``_op_<name>(cur)`` runs in the
simulator's transaction and returns the row changes it made as ``(table, op, count)``, for the
ledger; ``OPERATIONS`` weighs them. Times a lying clock may set (``products.updated_at``,
``orders.created_at``) are asked of ``_lie``.
"""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg2.extensions

from devstack._shop import _insert_customer, price, product_description, product_name

# (operation, weight): an order's life cycle dominates, as in a real shop.
OPERATIONS: tuple[tuple[str, int], ...] = (
    ("signup", 5),
    ("update_customer", 2),
    ("new_product", 2),
    ("restock", 8),
    ("change_price", 5),
    ("rename_product", 4),
    ("place_order", 35),
    ("pay_order", 15),
    ("ship_order", 10),
    ("cancel_order", 6),
    ("delete_product", 1),
    ("recreate_product", 1),
)


class ShopOperations:
    """The operations, mixed into ``ShopSimulator`` (which provides these)."""

    rng: random.Random

    def _lie(self, what: str) -> datetime | None:
        raise NotImplementedError

    def _pick(self, cur: psycopg2.extensions.cursor, sql: str) -> Any:
        cur.execute(sql + " ORDER BY random() LIMIT 1")
        row = cur.fetchone()
        return None if row is None else row

    def _op_signup(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        _insert_customer(cur, self.rng)
        return [("customers", "c", 1)]

    def _op_update_customer(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        row = self._pick(cur, "SELECT id FROM customers")
        if row is None:
            return []
        cur.execute(
            "UPDATE customers SET country = %s WHERE id = %s",
            (self.rng.choice(("DE", "FR", "US", "GB", "ES")), row[0]),
        )
        return [("customers", "u", 1)]

    def _op_new_product(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        cur.execute(
            "INSERT INTO products (name, description, price, stock) VALUES (%s, %s, %s, %s)",
            (
                product_name(self.rng),
                product_description(self.rng, long=self.rng.random() < 0.05),
                price(self.rng),
                self.rng.randint(0, 100),
            ),
        )
        return [("products", "c", 1)]

    def _op_restock(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        row = self._pick(cur, "SELECT id FROM products WHERE stock < 30")
        if row is None:
            return []
        cur.execute(
            "UPDATE products SET stock = stock + %s, updated_at = COALESCE(%s, now()) "
            "WHERE id = %s",
            (self.rng.randint(10, 100), self._lie("products.updated_at"), row[0]),
        )
        return [("products", "u", 1)]

    def _op_change_price(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        row = self._pick(cur, "SELECT id FROM products")
        if row is None:
            return []
        cur.execute(
            "UPDATE products SET price = %s, updated_at = COALESCE(%s, now()) WHERE id = %s",
            (price(self.rng), self._lie("products.updated_at"), row[0]),
        )
        return [("products", "u", 1)]

    def _op_rename_product(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        row = self._pick(cur, "SELECT id FROM products")
        if row is None:
            return []
        if self.rng.random() < 0.5:
            cur.execute(
                "UPDATE products SET name = %s, updated_at = COALESCE(%s, now()) WHERE id = %s",
                (product_name(self.rng), self._lie("products.updated_at"), row[0]),
            )
        else:
            cur.execute(
                "UPDATE products SET description = %s, updated_at = COALESCE(%s, now()) "
                "WHERE id = %s",
                (product_description(self.rng), self._lie("products.updated_at"), row[0]),
            )
        return [("products", "u", 1)]

    def _op_place_order(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        customer = self._pick(cur, "SELECT id FROM customers")
        if customer is None:
            return []
        cur.execute(
            "SELECT id, price, stock FROM products WHERE stock > 0 ORDER BY random() LIMIT %s",
            (self.rng.randint(1, 4),),
        )
        lines = [(pid, unit, self.rng.randint(1, min(3, stock))) for pid, unit, stock in cur]
        if not lines:
            return []
        total = sum((unit * qty for _, unit, qty in lines), Decimal("0.00"))
        cur.execute(
            "INSERT INTO orders (customer_id, status, total, created_at) "
            "VALUES (%s, 'pending', %s, COALESCE(%s, now())) RETURNING id",
            (customer[0], total, self._lie("orders.created_at")),
        )
        order_row = cur.fetchone()
        assert order_row is not None
        for pid, unit, qty in lines:
            cur.execute(
                "INSERT INTO order_items (order_id, product_id, quantity, unit_price) "
                "VALUES (%s, %s, %s, %s)",
                (order_row[0], pid, qty, unit),
            )
            cur.execute("UPDATE products SET stock = stock - %s WHERE id = %s", (qty, pid))
        return [("orders", "c", 1), ("order_items", "c", len(lines)), ("products", "u", len(lines))]

    def _set_status(
        self, cur: psycopg2.extensions.cursor, src: tuple[str, ...], dst: str
    ) -> list[tuple[str, str, int]]:
        cur.execute(
            "SELECT id FROM orders WHERE status = ANY(%s) ORDER BY random() LIMIT 1 FOR UPDATE",
            (list(src),),
        )
        row = cur.fetchone()
        if row is None:
            return []
        cur.execute("UPDATE orders SET status = %s WHERE id = %s", (dst, row[0]))
        changes = [("orders", "u", 1)]
        if dst == "cancelled":
            # Cancelling puts the items back on the shelf, in the same transaction. A product
            # deleted since the order was placed has nothing to restore.
            cur.execute(
                "UPDATE products p SET stock = p.stock + i.quantity FROM order_items i "
                "WHERE i.order_id = %s AND p.id = i.product_id",
                (row[0],),
            )
            if cur.rowcount:
                changes.append(("products", "u", cur.rowcount))
        return changes

    def _op_pay_order(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        return self._set_status(cur, ("pending",), "paid")

    def _op_ship_order(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        return self._set_status(cur, ("paid",), "shipped")

    def _op_cancel_order(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        return self._set_status(cur, ("pending", "paid"), "cancelled")

    def _op_delete_product(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        row = self._pick(cur, "SELECT id FROM products")
        if row is None:
            return []
        cur.execute("DELETE FROM products WHERE id = %s", (row[0],))
        return [("products", "d", 1)]

    def _op_recreate_product(self, cur: psycopg2.extensions.cursor) -> list[tuple[str, str, int]]:
        # A deleted product comes back under its old id (a shop re-listing an item).
        cur.execute(
            "SELECT i.product_id FROM order_items i LEFT JOIN products p "
            "ON p.id = i.product_id WHERE p.id IS NULL ORDER BY random() LIMIT 1"
        )
        row = cur.fetchone()
        if row is None:
            return []
        cur.execute(
            "INSERT INTO products (id, name, description, price, stock) "
            "VALUES (%s, %s, %s, %s, %s)",
            (
                row[0],
                product_name(self.rng),
                product_description(self.rng),
                price(self.rng),
                self.rng.randint(0, 50),
            ),
        )
        return [("products", "c", 1)]
