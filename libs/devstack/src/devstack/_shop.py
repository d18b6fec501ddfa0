"""The source database of the demo shop: schema and seed data.

The schema is the shop the project is built around (``customers``, ``products``, ``orders``,
``order_items``); the tables have primary keys, so Debezium keys every change by ``id``.
"""

from __future__ import annotations

import random
from decimal import Decimal
from importlib.resources import files

import psycopg2.extensions

SHOP_TABLES = ("customers", "products", "orders", "order_items")
ORDER_STATUSES = ("pending", "paid", "shipped", "cancelled")

# One definition for the embedded stack and docker compose (mounted there as an init script).
SHOP_DDL = (files("devstack") / "shop_schema.sql").read_text()

COUNTRIES = ("DE", "FR", "US", "GB", "ES", "IT", "NL", "PL", "SE", "JP", "BR", "IN")
_ADJECTIVES = (
    "Classic",
    "Organic",
    "Compact",
    "Deluxe",
    "Rustic",
    "Smart",
    "Vintage",
    "Crème",
    "Ergonomic",
    "Café",
    "Nordic",
    "Eco",
)
_NOUNS = (
    "Espresso Cup",
    "Teapot",
    "Water Bottle",
    "Desk Lamp",
    "Notebook",
    "Backpack",
    "Headphones",
    "Chair",
    "Frying Pan",
    "Yoga Mat",
    "Umbrella",
    "Candle",
)
_WORDS = (
    "durable",
    "handmade",
    "stainless",
    "steel",
    "ceramic",
    "recycled",
    "lightweight",
    "waterproof",
    "gift",
    "kitchen",
    "office",
    "travel",
    "premium",
    "everyday",
    "blue",
    "green",
    "matte",
    "glossy",
    "café",
    "naïve",
)


def install_schema(conn: psycopg2.extensions.connection) -> None:
    with conn.cursor() as cur:
        cur.execute(SHOP_DDL)
    conn.commit()


def product_name(rng: random.Random) -> str:
    return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"


def product_description(rng: random.Random, long: bool = False) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 18))]
    text = " ".join(words).capitalize() + "."
    if long:
        # Over 2 KB: PostgreSQL TOASTs it, so unrelated updates arrive from Debezium with the
        # "__debezium_unavailable_value" placeholder (the default replica identity).
        text = (text + " ") * (2200 // len(text) + 1)
    return text


def price(rng: random.Random) -> Decimal:
    return (Decimal(rng.randint(199, 19999)) / 100).quantize(Decimal("0.01"))


def seed(
    conn: psycopg2.extensions.connection,
    rng: random.Random,
    customers: int = 50,
    products: int = 100,
) -> None:
    """Initial rows, present before Debezium starts, so its snapshot has work to do."""
    with conn.cursor() as cur:
        for _ in range(customers):
            _insert_customer(cur, rng)
        for _ in range(products):
            cur.execute(
                "INSERT INTO products (name, description, price, stock) VALUES (%s, %s, %s, %s)",
                (
                    product_name(rng),
                    product_description(rng, long=rng.random() < 0.05),
                    price(rng),
                    rng.randint(0, 200),
                ),
            )
    conn.commit()


def _insert_customer(cur: psycopg2.extensions.cursor, rng: random.Random) -> int:
    first = rng.choice(("Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farah", "Gus", "Hiro", "Ines"))
    last = rng.choice(("Müller", "Smith", "García", "Rossi", "Nowak", "Tanaka", "Silva", "Dubois"))
    token = rng.getrandbits(48)
    cur.execute(
        "INSERT INTO customers (email, name, country) VALUES (%s, %s, %s) RETURNING id",
        (f"{first.lower()}.{token:x}@example.com", f"{first} {last}", rng.choice(COUNTRIES)),
    )
    row = cur.fetchone()
    assert row is not None
    return int(row[0])
