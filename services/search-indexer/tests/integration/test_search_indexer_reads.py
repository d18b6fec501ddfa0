"""The read side against the emulator: price listings read a page, not the range, and full-text
searches fetch many candidates in parallel requests, with answers equal to a reference computed
from the rows.

Products are indexed through the service's sink and decoder in the real consumer loop. Prices
repeat on purpose (ties at every page boundary), some products are out of stock, and one token
is held by more products than one ``BatchGetItem`` takes.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import orjson
import pytest
from cdc_events.testing import make_change
from consumer_runtime.testing import SinkHarness
from search_indexer import IndexTable, ProductSearch, SearchIndexSink, decode

TOPIC = "dbserver1.public.products"
PRODUCTS = 260
_PRICES = [Decimal(p) for p in ("0.50", "9.99", "20.00", "24.50", "24.50", "31.00", "49.99")]
_PRICES += [Decimal(p) for p in ("50.00", "50.00", "120.00", "199.99", "2500.00")]


def _rows() -> list[dict[str, Any]]:
    rng = random.Random(5)
    rows = []
    for pid in range(1, PRODUCTS + 1):
        words = rng.sample(["ceramic", "blue", "matte", "travel", "gift"], 2)
        rows.append(
            {
                "id": pid,
                "name": f"{rng.choice(['Nordic', 'Smart'])} {rng.choice(['Cup', 'Lamp'])}",
                # "handmade" is in every description: more candidates than one BatchGetItem
                "description": " ".join(["handmade", *words]),
                "price": rng.choice(_PRICES),
                "stock": rng.choice([0, 0, 3, 12]),
            }
        )
    return rows


@pytest.fixture(scope="module")
def indexed(aws_emulator: Any) -> tuple[IndexTable, list[dict[str, Any]], list[int]]:
    client = aws_emulator.client("dynamodb")
    table = IndexTable(client, "reads-test")
    from search_indexer import prepare_table

    prepare_table(client, table.name)
    rows = _rows()
    harness = SinkHarness(SearchIndexSink(table), decode)
    for r in rows:
        value = make_change("c", after=r, lsn=1000 + r["id"], with_schema=True).value or b""
        harness.produce(TOPIC, [value], key=orjson.dumps({"id": r["id"]}))
    harness.run_until_idle()
    harness.shutdown()
    assert harness.dlq.records == []
    # Every Query's ScannedCount, to see how much of the index a listing reads.
    scanned: list[int] = []
    client.meta.events.register(
        "after-call.dynamodb.Query",
        lambda parsed, **_: scanned.append(parsed.get("ScannedCount", 0)),
    )
    return table, rows, scanned


def _listing(rows: list[dict[str, Any]], low: Any, high: Any, stock: Any, limit: int) -> list[int]:
    hits = [
        r
        for r in rows
        if (low is None or r["price"] >= low)
        and (high is None or r["price"] <= high)
        and (stock is None or (r["stock"] > 0) == stock)
    ]
    return [r["id"] for r in sorted(hits, key=lambda r: (r["price"], r["id"]))[:limit]]


@pytest.mark.parametrize(
    ("low", "high", "in_stock", "limit"),
    [
        (None, None, None, 20),
        (Decimal(20), Decimal(50), None, 20),
        (Decimal(20), Decimal(50), True, 7),
        (Decimal("24.50"), Decimal("24.50"), False, 3),
        (Decimal(30), None, None, 50),
        (None, Decimal("9.99"), True, 500),
        (Decimal(100), Decimal(300), None, 1),
        (Decimal(3000), None, None, 20),
    ],
)
def test_price_listings_equal_the_reference_and_read_about_a_page(
    indexed: tuple[IndexTable, list[dict[str, Any]], list[int]],
    low: Any,
    high: Any,
    in_stock: Any,
    limit: int,
) -> None:
    table, rows, scanned = indexed
    scanned.clear()
    hits = ProductSearch(table).search(
        "", min_price=low, max_price=high, in_stock=in_stock, limit=limit
    )
    expected = _listing(rows, low, high, in_stock, limit)
    assert [h.id for h in hits] == expected
    assert [h.price for h in hits] == sorted(h.price for h in hits)
    in_range = len(_listing(rows, low, high, None, len(rows)))
    if in_range > 3 * (limit + 1) and in_stock is None:
        # Pages of limit + 1 until nothing unread can rank before the last kept: a page or
        # two past the ties at the boundary, not every product in the range.
        ties = sum(1 for r in rows if expected and r["price"] == rows[expected[-1] - 1]["price"])
        assert sum(scanned) <= limit + 1 + ties + limit + 1, (sum(scanned), in_range)


def test_full_text_over_more_candidates_than_one_batch_get_equals_the_reference(
    indexed: tuple[IndexTable, list[dict[str, Any]], list[int]],
) -> None:
    table, rows, _ = indexed
    search = ProductSearch(table)
    hits = search.search("handmade", limit=PRODUCTS)
    assert len(hits) == PRODUCTS  # every product: 3 BatchGetItem requests of candidates
    # Ranked: no token in any name, one in every description; so by normalised name, then id.
    assert [h.id for h in hits] == [
        r["id"] for r in sorted(rows, key=lambda r: (r["name"].lower(), r["id"]))
    ]
    cheap_blue = search.search(
        "handmade blue", max_price=Decimal(25), in_stock=True, limit=PRODUCTS
    )
    assert {h.id for h in cheap_blue} == {
        r["id"] for r in rows if "blue" in r["description"] and r["price"] <= 25 and r["stock"] > 0
    }
    assert cheap_blue  # the filter left something to compare
