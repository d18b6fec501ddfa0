"""The SQL workload behind the golden records: the recipe, kept next to the records it produced.

``scripts/capture_golden.py`` runs it against the embedded stack to (re-)capture the golden
records, and the integration tests run it against the session's live Debezium relay to prove the
records still match the connector. Pure data (SQL text); whoever runs it owns the connection.

Two tables cover the column types and the two replica identities:

* ``products`` (default replica identity): every logical type the parser decodes, plus TOASTed
  columns (``description`` text, ``tags`` text[], ``sizes`` int[], stored EXTERNAL so they are
  moved out of line uncompressed) that an update does not touch, so Debezium sends the
  ``__debezium_unavailable_value`` placeholder for them; a delete carries only the key.
* ``orders`` (REPLICA IDENTITY FULL): a delete and an update carry the whole old row.
"""

# ruff: noqa: S608 - table names come from the caller (fixed names or test-unique ids), not input
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Workload:
    """Table and type names for one run (tests pass unique names, the capture fixed ones)."""

    products: str = "products"
    orders: str = "orders"
    enum_type: str = "mood"
    scratch: str = "scratch"

    def setup(self) -> list[str]:
        """DDL, run before Debezium starts."""
        p, o, e, s = self.products, self.orders, self.enum_type, self.scratch
        return [
            f"CREATE TYPE {e} AS ENUM ('sad', 'ok', 'happy')",
            f"""CREATE TABLE {p} (
                id           integer PRIMARY KEY,
                name         text NOT NULL,
                description  text NOT NULL DEFAULT '',
                price        numeric(10,2) NOT NULL,
                weight       numeric,
                stock        integer NOT NULL,
                tags         text[],
                sizes        integer[],
                attrs        jsonb,
                ref          uuid,
                release_date date,
                listed_at    timestamp,
                listed_ms    timestamp(3),
                updated_at   timestamptz NOT NULL,
                opens_at     time,
                opens_ms     time(3),
                mood         {e}
            )""",
            f"ALTER TABLE {p} ALTER COLUMN description SET STORAGE EXTERNAL",
            f"ALTER TABLE {p} ALTER COLUMN tags SET STORAGE EXTERNAL",
            f"ALTER TABLE {p} ALTER COLUMN sizes SET STORAGE EXTERNAL",
            f"""CREATE TABLE {o} (
                id         integer PRIMARY KEY,
                status     text NOT NULL,
                total      numeric(12,2) NOT NULL,
                created_at timestamptz NOT NULL
            )""",
            f"ALTER TABLE {o} REPLICA IDENTITY FULL",
            f"CREATE TABLE {s} (id integer PRIMARY KEY)",
        ]

    def before_snapshot(self) -> list[str]:
        """Rows present when Debezium starts: they arrive as snapshot reads (``op: r``)."""
        p, o = self.products, self.orders
        return [
            f"""INSERT INTO {p} VALUES (
                1, 'Espresso Cup', 'Small ceramic cup', 12.50, 0.25, 10,
                '{{kitchen,ceramic}}', '{{1,2,3}}', '{{"color": "blue", "dims": [8, 6]}}',
                'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1965-03-01',
                '1969-07-20 20:17:40.123456', '1969-07-20 20:17:40.123',
                '2024-01-02 03:04:05.123456+00', '08:30:15.5', '08:30:15.5', 'happy')""",
            f"INSERT INTO {o} VALUES (1, 'pending', 99.90, '2024-01-02 03:04:05+00')",
        ]

    def transactions(self) -> list[list[str]]:
        """Streamed changes, one inner list per source transaction, in commit order."""
        p, o, s = self.products, self.orders, self.scratch
        return [
            [
                # Over 2 KB each and stored EXTERNAL: TOASTed out of line.
                f"""INSERT INTO {p} VALUES (
                    2, 'Teapot', repeat('Handmade stoneware teapot. ', 120), 1234567.89,
                    -3.14159, 3,
                    ARRAY(SELECT 'tag' || g FROM generate_series(1, 400) g),
                    ARRAY(SELECT g FROM generate_series(1, 1000) g),
                    '{{"a": null, "nested": {{"k": [1, 2.5, "x"]}}}}',
                    'f47ac10b-58cc-4372-a567-0e02b2c3d479', '2024-02-29',
                    '2024-02-29 23:59:59.999999', '2024-02-29 23:59:59.999',
                    '2099-12-31 23:59:59.5+00', '23:59:59.999999', '23:59:59.999', NULL)""",
                f"INSERT INTO {o} VALUES (2, 'pending', 1050.00, '2024-03-01 10:00:00+00')",
            ],
            # Leaves the TOASTed columns untouched: Debezium cannot see their values.
            [
                f"UPDATE {p} SET price = 13.99, stock = 4, updated_at = '2024-03-01 00:00:00+00' "
                "WHERE id = 2"
            ],
            [f"UPDATE {o} SET status = 'paid' WHERE id = 2"],
            [f"DELETE FROM {p} WHERE id = 1"],
            [f"DELETE FROM {o} WHERE id = 1"],
            [f"INSERT INTO {s} VALUES (1)"],
            [f"TRUNCATE {s}"],
            ["SELECT pg_logical_emit_message(true, 'audit', 'checkout-42')"],
        ]
