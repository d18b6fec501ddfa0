"""Legitimate source data past DynamoDB's limits, indexed through the sink into the emulator.

The emulator refuses, like DynamoDB, a partition key over 2,048 bytes and a sort key (of the
table or of a GSI) over 1,024 bytes on every write, and an item over about 400 KB. A product
whose name is 400 CJK characters (1,200 UTF-8 bytes: the ``by-name`` sort key), one whose name
is a single word of 5,000 letters (the posting key ``TOKEN#<word>``), and one with a 1 MB
description (an item over 400 KB, and a 1 MB "word" of unsegmented CJK text) used to make the
indexer exit with a ValidationException; each must be indexed and found by id, by a name prefix
within the key budget and by a normal token, and searching for the long words must not fail.
"""

from __future__ import annotations

from decimal import Decimal

import orjson
from cdc_events.testing import make_change
from consumer_runtime.testing import SinkHarness
from read_models.search import TOKEN_MAX_BYTES, indexed_text
from search_indexer import MAX_TOKENS, IndexTable, Product, ProductSearch, SearchIndexSink, decode
from search_indexer._items import parse_product, product_item, with_pending

TOPIC = "dbserver1.public.products"
# DynamoDB's limits (UTF-8 bytes), for the table's and the GSIs' key attributes alike.
PARTITION_KEY_MAX = 2048
SORT_KEY_MAX = 1024

CJK_NAME = "東京" * 200  # 400 characters, 1,200 UTF-8 bytes
LONG_WORD = "Ab" * 2500  # one 5,000-letter word
# About 1 MB: ordinary words, then a long run of unsegmented CJK text (a single "word" for the
# tokeniser), then more words. Its tail lies past the description budget.
BIG_DESCRIPTION = (
    "Handmade ceramic espresso cup. "
    + "日本製の陶器" * 55_000
    + " "
    + "glaze kiln porcelain " * 1_000
)
ROWS = [
    (1, f"{CJK_NAME} Teapot", "A teapot from Tokyo", "24.00", 5),
    (2, f"Word {LONG_WORD}", "A very long word", "9.90", 1),
    (3, "Catalogue Espresso Cup", BIG_DESCRIPTION, "12.50", 3),
    (4, "Desk Lamp", "Matte steel lamp", "49.90", 7),
]


def _row(pid: int, name: str, desc: str, price: str, stock: int) -> dict[str, object]:
    return {"id": pid, "name": name, "description": desc, "price": Decimal(price), "stock": stock}


def _index(table: IndexTable, values: list[tuple[int, bytes]]) -> None:
    """Through the service's sink and decoder, in the real consumer loop."""
    harness = SinkHarness(SearchIndexSink(table), decode)
    for pid, value in values:
        harness.produce(TOPIC, [value], key=orjson.dumps({"id": pid}))
    harness.run_until_idle()
    harness.shutdown()
    assert harness.dlq.records == []


def _creates() -> list[tuple[int, bytes]]:
    out = []
    for pid, name, desc, price, stock in ROWS:
        row = _row(pid, name, desc, price, stock)
        value = make_change("c", after=row, lsn=1000 + pid, with_schema=True).value
        assert value is not None
        out.append((pid, value))
    return out


def _assert_keys_within_limits(table: IndexTable) -> None:
    for item in table.scan_all():
        assert len(item["pk"]["S"].encode()) <= PARTITION_KEY_MAX
        assert len(item["sk"]["S"].encode()) <= SORT_KEY_MAX
        if "name_norm" in item:
            assert len(item["name_norm"]["S"].encode()) <= SORT_KEY_MAX
            assert len(item["gsi_name_pk"]["S"].encode()) <= PARTITION_KEY_MAX


def test_products_past_dynamodb_key_and_item_limits_are_indexed_and_found(
    index_table: IndexTable, aws_env: dict[str, str]
) -> None:
    assert len(BIG_DESCRIPTION.encode()) > 1_000_000
    _index(index_table, _creates())
    search = ProductSearch(index_table)

    # By id: every product with its whole name (the key holds a cut, the attribute all of it).
    for pid, name, desc, _, _ in ROWS:
        hit = search.get(pid)
        assert hit is not None, pid
        assert hit.name == name
        assert hit.description == indexed_text(name, desc)[1]
    big = search.get(3)
    assert big is not None and big.description.startswith("Handmade ceramic espresso cup.")
    assert BIG_DESCRIPTION.startswith(big.description)
    assert len(big.description.encode()) <= 64 * 1024  # the description budget
    assert search.get(10**3000) is None  # an id no product can have: not a ValidationException

    # By name prefix within the key budget (the key is cut at a character boundary).
    assert [h.id for h in search.by_name("東京東京東京")] == [1]
    assert [h.id for h in search.by_name("東京" * 170)] == [1]  # 1,020 bytes
    assert [h.id for h in search.by_name("word abab")] == [2]
    assert [h.id for h in search.by_name(f"word {LONG_WORD[:1000]}")] == [2]
    assert [h.id for h in search.by_name("catalogue esp")] == [3]
    # A prefix longer than the key (up to the whole name) is checked against the stored name.
    assert [h.id for h in search.by_name(f"{CJK_NAME} tea")] == [1]
    assert [h.id for h in search.by_name(f"{CJK_NAME} teapot", exact=True)] == [1]
    assert search.by_name(CJK_NAME, exact=True) == []  # the name goes on: not equal
    assert search.by_name(f"{CJK_NAME} kettle") == []
    assert [h.id for h in search.by_name(f"word {LONG_WORD}", exact=True)] == [2]

    # By a normal token, and by the long words themselves (the same hashed token both sides).
    assert [h.id for h in search.search("teapot")] == [1]
    assert [h.id for h in search.search("word")] == [2]
    assert [h.id for h in search.search("espresso cup")] == [3]
    assert [h.id for h in search.search("ceramic")] == [3]  # from the description
    assert [h.id for h in search.search(CJK_NAME)] == [1]
    assert [h.id for h in search.search(LONG_WORD)] == [2]
    assert [h.id for h in search.search(f"{LONG_WORD} word")] == [2]
    assert search.search(f"{LONG_WORD} teapot") == []
    assert search.search("東" * 3000) == []
    assert search.search("glaze") == []  # past the description budget: not indexed

    _assert_keys_within_limits(index_table)


def test_updates_and_a_replay_of_oversized_products_are_stable(
    index_table: IndexTable, aws_env: dict[str, str]
) -> None:
    """A price change, a TOAST update (Debezium did not send the 1 MB description: the stored,
    cut one is kept) and a replay of everything write the same postings again."""
    _index(index_table, _creates())
    before = {i["pk"]["S"] for i in index_table.scan_all() if i["pk"]["S"].startswith("TOKEN#")}

    updates = []
    for pid, name, desc, _, stock in ROWS[:3]:
        row = _row(pid, name, "PLACEHOLDER" if pid == 3 else desc, "7.00", stock)
        lsn = 5000 + pid  # a later transaction: its commit key is above the creates'
        value = make_change("u", after=row, lsn=lsn, sequence=(4000, lsn), with_schema=True).value
        assert value is not None
        updates.append((pid, value.replace(b'"PLACEHOLDER"', b'"__debezium_unavailable_value"')))
    _index(index_table, updates)
    _index(index_table, _creates() + updates)  # a replay: older versions are skipped

    items = index_table.scan_all()
    live = {i["pk"]["S"] for i in items if i["pk"]["S"].startswith("TOKEN#") and "removed" not in i}
    assert live == before
    stored = [parse_product(i) for i in items if i["pk"]["S"].startswith("PRODUCT#")]
    products = {p.id: p for p in stored}
    assert products[3].description == indexed_text("", BIG_DESCRIPTION)[1]
    assert all(products[pid].price == Decimal("7.00") for pid in (1, 2, 3))
    assert not any("pending_tokens" in i for i in items)
    _assert_keys_within_limits(index_table)


def test_the_largest_product_item_the_builders_can_make_is_accepted(
    index_table: IndexTable, aws_env: dict[str, str]
) -> None:
    """Name and description far past their budgets in 4-byte characters, both token lists full
    of tokens at the token budget, and pending entries for 4 x MAX_TOKENS tokens."""
    tokens = [f"{i:03d}" + "a" * (TOKEN_MAX_BYTES - 3) for i in range(MAX_TOKENS)]
    others = [f"{i:03d}" + "b" * (TOKEN_MAX_BYTES - 3) for i in range(3 * MAX_TOKENS)]
    name = " ".join(["𠀀" * 100] * 200)
    product = Product(2**31 - 1, name, "", Decimal("99999999.99"), 2**31 - 1, None)
    version = "m1" + "9" * 60  # the longest source version (MySQL's form)
    item = product_item(
        product, "😀" * 300_000, tokens, tokens, version, partition=2, offset=10**15
    )
    item = with_pending(item, dict.fromkeys(tokens + others, version))
    assert index_table.put_product(item, None, 0)
    stored = index_table.read_product(2**31 - 1)
    assert stored is not None and stored.name == indexed_text(name, "")[0]
    assert len(stored.pending) == 4 * MAX_TOKENS
    _assert_keys_within_limits(index_table)
