"""Byte budgets of the keys and items built from text (DynamoDB: partition key <= 2,048 bytes,
sort key <= 1,024 bytes, also for GSI keys; item <= 400 KB). The emulator enforces the key
limits on writes (see ``tests/integration/test_search_indexer_limits.py``) but counts item sizes
its own way and does not check query values, so those are asserted here on the builders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from read_models.search import (
    DESCRIPTION_MAX_BYTES,
    NAME_MAX_BYTES,
    TOKEN_MAX_BYTES,
    bound_token,
    indexed_text,
    normalize_name,
    utf8_prefix,
)
from search_indexer import MAX_TOKENS, Product, ProductSearch, document_tokens, tokenize
from search_indexer._items import (
    NAME_KEY_MAX_BYTES,
    StoredProduct,
    name_key,
    pending_entries,
    posting_item,
    product_item,
    removed_posting_item,
    with_pending,
)

PARTITION_KEY_MAX = 2048
SORT_KEY_MAX = 1024
ITEM_MAX = 400 * 1024

EMOJI = "😀"  # 4 UTF-8 bytes, not a letter (a separator for the tokeniser)
CJK_B = "𠀀"  # U+20000, a letter of 4 UTF-8 bytes
CJK = "東"  # a letter of 3 UTF-8 bytes
#: The longest source version (``cdc_events.source_version``'s MySQL form, 62 characters).
LONGEST_VERSION = "m1" + "9" * 60


def nbytes(text: str) -> int:
    return len(text.encode())


def item_size(value: Any) -> int:
    """An upper bound of DynamoDB's size of an item (its attribute names and values): strings
    and binaries their bytes, numbers at most 21 bytes, booleans and nulls 1, lists and maps 3
    bytes plus 1 per element plus the elements (map keys counted), sets their elements."""
    if set(value) - {"S", "N", "BOOL", "NULL", "L", "M", "SS", "NS"}:
        return sum(nbytes(name) + item_size(v) for name, v in value.items())  # an item
    ((kind, v),) = value.items()
    if kind == "S":
        return nbytes(v)
    if kind == "N":
        return 21
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(nbytes(s) for s in v)
    if kind == "NS":
        return 21 * len(v)
    if kind == "L":
        return 3 + sum(1 + item_size(e) for e in v)
    return 3 + sum(1 + nbytes(k) + item_size(e) for k, e in v.items())  # M


def assert_keys_within_limits(item: dict[str, Any]) -> None:
    assert nbytes(item["pk"]["S"]) <= PARTITION_KEY_MAX
    assert nbytes(item["sk"]["S"]) <= SORT_KEY_MAX
    if "gsi_name_pk" in item:
        assert nbytes(item["gsi_name_pk"]["S"]) <= PARTITION_KEY_MAX
        assert nbytes(item["name_norm"]["S"]) <= SORT_KEY_MAX
    if "price_bucket" in item:
        assert nbytes(item["price_bucket"]["S"]) <= PARTITION_KEY_MAX


# -- cutting at a character boundary -------------------------------------------------------------


@pytest.mark.parametrize(
    "text", [EMOJI * 40, "a" + EMOJI * 40, "ab" + CJK * 30 + EMOJI * 9, "x" * 99]
)
def test_utf8_prefix_is_the_longest_whole_character_prefix_within_the_budget(text: str) -> None:
    for budget in range(nbytes(text) + 2):
        cut = utf8_prefix(text, budget)
        assert text.startswith(cut)  # whole characters only: never half of one
        assert nbytes(cut) <= budget
        if cut != text:
            assert nbytes(text[: len(cut) + 1]) > budget  # the next character does not fit
    assert utf8_prefix(text, nbytes(text)) == text


def test_indexed_text_cuts_name_and_description_to_their_budgets() -> None:
    name, desc = indexed_text(CJK_B * 5000, EMOJI * 300_000)
    assert nbytes(name) == NAME_MAX_BYTES == 4 * len(name)  # 4-byte characters fit exactly
    assert nbytes(desc) == DESCRIPTION_MAX_BYTES
    name, desc = indexed_text("a" + CJK_B * 5000, "ab" + EMOJI * 300_000)
    assert nbytes(name) == NAME_MAX_BYTES - 3 and name == "a" + CJK_B * (len(name) - 1)
    assert nbytes(desc) == DESCRIPTION_MAX_BYTES - 2
    assert indexed_text(name, desc) == (name, desc)  # idempotent
    assert indexed_text("Teapot", "Blue") == ("Teapot", "Blue")


# -- tokens ----------------------------------------------------------------------------------------


def test_a_token_at_the_budget_is_kept_and_a_longer_one_hashed_within_it() -> None:
    at_limit = "a" * TOKEN_MAX_BYTES
    assert tokenize(at_limit) == [at_limit]
    over = "a" * (TOKEN_MAX_BYTES + 1)
    (hashed,) = tokenize(over)
    assert nbytes(hashed) <= TOKEN_MAX_BYTES and "~" in hashed and hashed.startswith("aaaa")
    assert tokenize(f"Big {over.upper()}") == ["big", hashed]  # the query side: the same token
    # Two long words sharing the readable prefix are two tokens.
    assert bound_token("a" * 300 + "b") != bound_token("a" * 300 + "c")


@pytest.mark.parametrize("letter", [CJK_B, CJK, "é"])
def test_a_hashed_token_of_multibyte_letters_never_splits_one(letter: str) -> None:
    word = letter * 5000
    (token,) = tokenize(word)
    prefix, _, digest = token.partition("~")
    assert nbytes(token) <= TOKEN_MAX_BYTES and len(digest) == 32
    assert set(prefix) <= set(normalize_name(letter))  # whole (folded) letters only
    assert token.encode().decode() == token


def test_every_token_of_any_text_fits_the_posting_keys() -> None:
    text = " ".join([CJK_B * 600, "Ab" * 2500, CJK * 400, "espresso", EMOJI * 10, "x" * 2042])
    tokens = tokenize(text)
    assert "espresso" in tokens and len(tokens) == 5
    for token in tokens:
        assert nbytes(token) <= TOKEN_MAX_BYTES
        for item in (
            posting_item(token, 2**31, LONGEST_VERSION),
            removed_posting_item(token, 1, LONGEST_VERSION, 1),
        ):
            assert_keys_within_limits(item)
        assert "@" not in token  # the pending entries' separator


def test_document_tokens_of_a_huge_description_come_from_its_indexed_part() -> None:
    description = "ceramic cup " + CJK * 400_000 + " glaze"  # 1.2 MB, "glaze" past the budget
    name_tokens, desc_tokens = document_tokens("Teapot", description)
    assert name_tokens == ["teapot"]
    assert desc_tokens[:2] == ["ceramic", "cup"] and "glaze" not in desc_tokens
    assert all(nbytes(t) <= TOKEN_MAX_BYTES for t in desc_tokens)
    # The full text and its cut give the same tokens (a TOAST update re-tokenises the cut).
    assert document_tokens("Teapot", indexed_text("Teapot", description)[1]) == (
        name_tokens,
        desc_tokens,
    )


# -- the by-name key -------------------------------------------------------------------------------


def test_name_key_is_cut_to_the_sort_key_limit_at_a_character_boundary() -> None:
    assert NAME_KEY_MAX_BYTES <= SORT_KEY_MAX
    assert name_key(CJK_B * 300) == CJK_B * 256  # exactly 1,024 bytes
    cut = name_key("a" + CJK_B * 300)
    assert cut == "a" + CJK_B * 255 and nbytes(cut) == NAME_KEY_MAX_BYTES - 3
    cut = name_key("東京" * 200)  # 1,200 bytes
    assert cut == "東京" * 170 + "東" and nbytes(cut) == 1023
    assert name_key("x" * 1024) == "x" * 1024
    assert name_key("x" * 1025) == "x" * 1024


def _product(name: str, description: str = "") -> Product:
    return Product(7, name, description, Decimal("12.50"), 3, None)


@pytest.mark.parametrize(
    "name", ["東京" * 200, f"Word {'Ab' * 2500}", CJK_B * 20_000, f"x {EMOJI * 5000} y", "x" * 2049]
)
def test_product_item_keys_fit_and_the_name_is_kept_whole(name: str) -> None:
    tokens = document_tokens(name, "")
    item = product_item(_product(name), "", *tokens, LONGEST_VERSION, partition=0, offset=1)
    assert_keys_within_limits(item)
    assert item["name"]["S"] == indexed_text(name, "")[0]
    if nbytes(name) <= NAME_MAX_BYTES:
        assert item["name"]["S"] == name  # results show the whole name
    norm = normalize_name(item["name"]["S"])
    assert norm.startswith(item["name_norm"]["S"])  # a prefix: prefix search keeps working
    assert item["gsi_name_pk"]["S"] == f"NAME#{norm[0]}"


def test_the_largest_product_item_stays_under_the_item_limit() -> None:
    """Every text attribute at its budget in 4-byte characters, both token lists full of tokens
    at the token budget, and pending entries for four times MAX_TOKENS tokens (a write records
    at most the stored and the new tokens, 2 x MAX_TOKENS, next to entries left by an
    interrupted attempt) at the longest source version (62 characters)."""
    tokens = [f"{i:03d}" + "a" * (TOKEN_MAX_BYTES - 3) for i in range(MAX_TOKENS)]
    other = [f"{i:03d}" + "b" * (TOKEN_MAX_BYTES - 3) for i in range(3 * MAX_TOKENS)]
    name = " ".join([CJK_B * 100] * 200)
    product = Product(2**63 - 1, name, "", Decimal("99999999.99"), 2**31 - 1, None)
    item = product_item(
        product, EMOJI * 200_000, tokens, tokens, LONGEST_VERSION, partition=999, offset=10**18
    )
    pending = dict.fromkeys(tokens + other, LONGEST_VERSION)
    item = with_pending(item, pending)
    item["pending_rev"] = {"N": str(2**63)}
    assert len(item["pending_tokens"]["SS"]) == 4 * MAX_TOKENS
    assert nbytes(item["name"]["S"]) > NAME_MAX_BYTES - 4
    assert nbytes(item["description"]["S"]) == DESCRIPTION_MAX_BYTES
    assert_keys_within_limits(item)
    size = item_size(item)
    assert size < ITEM_MAX * 0.6, size  # 1 WCU per KB: a product write stays well under 400
    assert all(
        nbytes(e) <= TOKEN_MAX_BYTES + 1 + len(LONGEST_VERSION) for e in pending_entries(pending)
    )


# -- the query side --------------------------------------------------------------------------------


class RecordingTable:
    """The reads ``ProductSearch`` makes, recorded (values that would be key conditions)."""

    def __init__(self, products: list[StoredProduct]) -> None:
        self.products = {p.id: p for p in products}
        self.posting_reads: list[str] = []
        self.name_reads: list[tuple[str, bool, int | None]] = []

    def posting_ids(self, token: str) -> set[int]:
        self.posting_reads.append(token)
        return {p.id for p in self.products.values() if token in p.tokens}

    def posting_page(
        self, token: str, *, limit: int, start: dict[str, int] | None = None
    ) -> tuple[set[int], dict[str, int] | None]:
        """The postings a page at a time (a query of several tokens reads them so)."""
        self.posting_reads.append(token)
        ids = sorted(p.id for p in self.products.values() if token in p.tokens)
        begin = 0 if start is None else start["i"]
        end = begin + limit
        return set(ids[begin:end]), ({"i": end} if end < len(ids) else None)

    def read_products(self, ids: list[int], *, consistent: bool = True) -> dict[int, Any]:
        return {i: self.products[i] for i in ids if i in self.products}

    def read_product(self, product_id: int, *, consistent: bool = True) -> StoredProduct | None:
        assert nbytes(f"PRODUCT#{product_id}") <= PARTITION_KEY_MAX
        return self.products.get(product_id)

    def query_name(self, key: str, *, exact: bool, limit: int | None) -> list[StoredProduct]:
        self.name_reads.append((key, exact, limit))
        keys = {p.id: name_key(normalize_name(p.name)) for p in self.products.values() if p.name}
        found = [
            self.products[i] for i, k in sorted(keys.items(), key=lambda kv: kv[1])
            if (k == key if exact else k.startswith(key))
        ]  # fmt: skip
        return found[:limit]


def _stored(pid: int, name: str, description: str = "") -> StoredProduct:
    name, description = indexed_text(name, description)
    name_tokens, desc_tokens = document_tokens(name, description)
    return StoredProduct(
        pid,
        1,
        False,
        name=name,
        description=description,
        price=Decimal(1),
        stock=1,
        name_tokens=tuple(name_tokens),
        desc_tokens=tuple(desc_tokens),
    )


LONG = "東京" * 200
PRODUCTS = [
    _stored(1, f"{LONG} Teapot"),
    _stored(2, f"{LONG} Kettle"),
    _stored(3, LONG),
    _stored(4, "Ab" * 2500),
]


def test_search_queries_postings_by_the_same_bounded_tokens() -> None:
    table = RecordingTable(PRODUCTS)
    search = ProductSearch(table)  # type: ignore[arg-type]
    assert [h.id for h in search.search(f"{LONG} teapot")] == [1]
    assert [h.id for h in search.search("ab" * 2500)] == [4]
    assert search.search(CJK_B * 10_000) == []
    assert all(nbytes(f"TOKEN#{t}") <= PARTITION_KEY_MAX for t in table.posting_reads)
    assert search.get(10**2500) is None and search.get(-(10**30)) is None


def test_by_name_cuts_a_long_prefix_to_the_key_and_checks_the_whole_one() -> None:
    table = RecordingTable(PRODUCTS)
    search = ProductSearch(table)  # type: ignore[arg-type]
    # The three share one cut key (their order in the index is not defined).
    assert sorted(h.id for h in search.by_name("東京東京")) == [1, 2, 3]
    assert table.name_reads[0] == ("東京東京", False, 20)  # short: the key answers exactly
    assert [h.id for h in search.by_name(f"{LONG} tea")] == [1]
    assert sorted(h.id for h in search.by_name(LONG)) == [1, 2, 3]
    assert [h.id for h in search.by_name(LONG, exact=True)] == [3]
    assert [h.id for h in search.by_name(f"{LONG} kettle", exact=True)] == [2]
    assert search.by_name(f"{LONG} kettles", exact=True) == []
    assert [h.id for h in search.by_name("ab" * 2500, exact=True)] == [4]
    assert [h.id for h in search.by_name("ab" * 2500 + "a")] == []
    for key, _, limit in table.name_reads:
        assert nbytes(key) <= NAME_KEY_MAX_BYTES <= SORT_KEY_MAX
        assert limit is None or nbytes(key) < NAME_KEY_MAX_BYTES - 3
