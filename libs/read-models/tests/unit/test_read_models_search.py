"""``ProductSearch``'s own logic over an in-memory index: intersecting postings and re-checking
candidates, ranking, the price and stock filters, the price listing read bucket by bucket and
page by page until nothing unread can rank earlier, names (prefix, exact, and past the key
budget), and what is refused before any read. The index stand-in answers as ``SearchTable``
does (its DynamoDB reads are the integration tests')."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from read_models import InvalidQueryError
from read_models.search import (
    NAME_KEY_MAX_BYTES,
    ProductSearch,
    StoredProduct,
    document_tokens,
    name_key,
    normalize_name,
    price_bucket,
)


def _product(
    pid: int, name: str, description: str, price: str, stock: int = 1, *, deleted: bool = False
) -> StoredProduct:
    name_tokens, desc_tokens = document_tokens(name, description)
    return StoredProduct(
        id=pid,
        version=f"v{pid}",
        deleted=deleted,
        name=name,
        description=description,
        price=Decimal(price),
        stock=stock,
        name_tokens=tuple(name_tokens),
        desc_tokens=tuple(desc_tokens),
    )


class MemoryIndex:
    """``SearchTable``'s reads over a dict of products; ``pages`` records the price pages read."""

    def __init__(self, products: list[StoredProduct], stale_postings: set[int] = frozenset()):
        self.products = {p.id: p for p in products}
        #: ids a posting still names although the product no longer holds the token
        self.stale = stale_postings
        self.pages: list[tuple[str, int]] = []
        #: (token, postings read) per posting page read
        self.posting_reads: list[tuple[str, int]] = []
        #: ids of the product items read
        self.items_read: list[int] = []

    def posting_ids(self, token: str) -> set[int]:
        return {p.id for p in self.products.values() if token in p.tokens} | set(self.stale)

    def posting_page(
        self, token: str, *, limit: int, start: dict[str, int] | None = None
    ) -> tuple[set[int], dict[str, int] | None]:
        ids = sorted(self.posting_ids(token))
        begin = 0 if start is None else start["i"]
        end = begin + limit
        self.posting_reads.append((token, len(ids[begin:end])))
        return set(ids[begin:end]), ({"i": end} if end < len(ids) else None)

    def read_products(self, ids: list[int], *, consistent: bool = True) -> dict[int, Any]:
        self.items_read.extend(ids)
        return {i: self.products[i] for i in ids if i in self.products}

    def read_product(self, product_id: int, *, consistent: bool = True) -> StoredProduct | None:
        return self.products.get(product_id)

    def query_price(
        self,
        bucket: str,
        low: str | None,
        high: str | None,
        *,
        in_stock: bool | None = None,
        limit: int | None = None,
        start: dict[str, int] | None = None,
    ) -> tuple[list[StoredProduct], dict[str, int] | None]:
        rows = sorted(
            (
                p
                for p in self.products.values()
                if price_bucket(p.price) == bucket
                and (low is None or p.price >= Decimal(low))
                and (high is None or p.price <= Decimal(high))
            ),
            key=lambda p: (p.price, p.id),
        )
        begin = 0 if start is None else start["i"]
        end = len(rows) if limit is None else begin + limit
        self.pages.append((bucket, begin))
        # The stock filter applies after the limit, as DynamoDB's FilterExpression does.
        page = [p for p in rows[begin:end] if in_stock is None or p.in_stock == in_stock]
        return page, ({"i": end} if end < len(rows) else None)

    def query_name(self, key: str, *, exact: bool, limit: int | None) -> list[StoredProduct]:
        def stored_key(p: StoredProduct) -> str:
            return name_key(normalize_name(p.name))

        rows = sorted(
            (
                p
                for p in self.products.values()
                if (stored_key(p) == key if exact else stored_key(p).startswith(key))
            ),
            key=lambda p: (stored_key(p), p.id),
        )
        return rows[:limit]


CATALOGUE = [
    _product(1, "Red Mug", "a ceramic mug", "12.00", stock=3),
    _product(2, "Mug", "a red mug for tea", "8.50", stock=0),
    _product(3, "Red Cup", "shaped like a mug", "4.00"),
    _product(4, "Blue Mug", "not that colour", "9.00"),
    _product(5, "Red Mug Deluxe", "red, a mug", "120.00", deleted=True),
    _product(6, "Tea Pot", "for a red mug", "0.50"),
    _product(7, "Teapot Stand", "holds a pot", "25.00"),
]


@pytest.fixture
def index() -> MemoryIndex:
    return MemoryIndex(CATALOGUE, stale_postings={99})


def _ids(hits: list[Any]) -> list[int]:
    return [h.id for h in hits]


def test_every_word_must_match_and_name_matches_rank_first(index: MemoryIndex) -> None:
    search = ProductSearch(index)  # type: ignore[arg-type]
    hits = search.search("red mug")
    # 1 has both words in its name; 2 and 3 one each (2 has more in its description); 6 none;
    # 4 lacks "red"; 5 is deleted; 99 is a posting without a product.
    assert _ids(hits) == [1, 2, 3, 6]
    assert (hits[0].name_matches, hits[0].description_matches) == (2, 1)
    assert (hits[1].name_matches, hits[1].description_matches) == (1, 2)
    assert _ids(search.search("red mug", limit=2)) == [1, 2]
    assert _ids(search.search("Mugs!")) == [2, 1, 4, 3, 6]  # stemmed and folded as documents


def test_a_search_filters_by_price_and_stock(index: MemoryIndex) -> None:
    search = ProductSearch(index)  # type: ignore[arg-type]
    assert _ids(search.search("red mug", min_price="5", max_price=Decimal(20))) == [1, 2]
    assert _ids(search.search("red mug", in_stock=True)) == [1, 3, 6]
    assert _ids(search.search("red mug", in_stock=False)) == [2]
    assert search.search("the of and") == []  # only stop words: nothing holds every token


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_price": "abc"}, "min_price is not a number"),
        ({"max_price": "-1"}, "max_price must be a non-negative number"),
        ({"min_price": "NaN"}, "min_price must be a non-negative number"),
        ({"min_price": 5, "max_price": 2}, "min_price 5 is above max_price 2"),
        ({"limit": 0}, "limit must be at least 1"),
    ],
)
def test_what_cannot_be_asked_is_refused(
    index: MemoryIndex, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        ProductSearch(index).search("mug", **kwargs)  # type: ignore[arg-type]


def test_without_words_products_come_by_price_reading_only_what_can_rank(
    index: MemoryIndex,
) -> None:
    search = ProductSearch(index)  # type: ignore[arg-type]
    assert _ids(search.search("")) == [6, 3, 2, 4, 1, 7]  # the deleted 5 left out
    index.pages.clear()
    assert _ids(search.search("", limit=2)) == [6, 3]
    # 0.50, then the buckets up to 4.00's; none past it, whatever they hold.
    assert [bucket for bucket, _ in index.pages] == ["P0-0", "P1-1", "P1-2", "P1-3", "P1-4"]
    index.pages.clear()
    assert _ids(search.search("", min_price="8", max_price="30", limit=1)) == [2]
    assert index.pages == [("P1-8", 0)]  # the first bucket in range answered it
    # In stock only: 2 (no stock) is read and dropped, the listing goes on to 4.
    assert _ids(search.search("", min_price="8", in_stock=True, limit=1)) == [4]


def test_one_product_by_id(index: MemoryIndex) -> None:
    search = ProductSearch(index)  # type: ignore[arg-type]
    one = search.get(3)
    assert one is not None and one.to_dict()["price"] == "4.00"
    assert search.get(5) is None  # deleted
    assert search.get(2**64) is None  # no product can have it: not looked up
    assert search.get(404) is None


def test_by_name_prefix_and_exact(index: MemoryIndex) -> None:
    search = ProductSearch(index)  # type: ignore[arg-type]
    assert _ids(search.by_name("red")) == [3, 1]  # by name; the deleted "Red Mug Deluxe" out
    assert _ids(search.by_name("RED mug", exact=True)) == [1]
    assert _ids(search.by_name("tea")) == [6, 7]
    assert _ids(search.by_name("tea", limit=1)) == [6]
    assert search.by_name("  !! ") == []  # nothing left once normalised


def test_a_name_past_the_key_budget_is_compared_whole() -> None:
    stem = "a" * NAME_KEY_MAX_BYTES  # both names share the whole stored key
    index = MemoryIndex(
        [_product(1, stem + " one", "x", "1.00"), _product(2, stem + " two", "x", "2.00")]
    )
    search = ProductSearch(index)  # type: ignore[arg-type]
    assert _ids(search.by_name(stem)) == [1, 2]
    assert _ids(search.by_name(stem + " two")) == [2]
    assert _ids(search.by_name(stem + " one", exact=True)) == [1]
    assert _ids(search.by_name(stem + " two", limit=1)) == [2]


def test_a_rare_token_with_a_common_one_reads_a_bounded_part_of_the_common_ones_postings() -> None:
    """Every product holding both tokens holds the rare one: once its postings are read to the
    end they are enough as candidates, and the common token's are read on only while they stay
    under 50 per candidate (pages of 256, then 512): not all 3,010."""
    common = [_product(i, f"Mug {i}", "ceramic", "5.00") for i in range(1, 3001)]
    rare = [_product(i, f"Mug {i}", "ceramic espresso", "5.00") for i in range(3001, 3011)]
    index = MemoryIndex([*common, *rare])
    hits = ProductSearch(index).search("espresso ceramic", limit=100)  # type: ignore[arg-type]
    assert sorted(h.id for h in hits) == list(range(3001, 3011))
    assert _postings_read(index) == {"espresso": 10, "ceramic": 256 + 512}
    assert sorted(index.items_read) == list(range(3001, 3011))
    # A token no product holds ends the reading at once: nothing can match.
    index.posting_reads.clear()
    assert ProductSearch(index).search("ceramic teapot") == []  # type: ignore[arg-type]
    assert _postings_read(index) == {"ceramic": 256, "teapot": 0}


def test_tokens_of_similar_frequency_are_intersected_before_any_item_is_read() -> None:
    """Postings are cheap and items are not: a token whose postings stay under 50 per candidate
    is read to the end and intersected, so only the products holding both are read."""
    cups = [_product(i, f"Cup {i}", "ceramic", "5.00") for i in range(1, 1001)]
    both = [_product(i, f"Cup {i}", "ceramic espresso", "5.00") for i in range(1001, 1041)]
    pots = [_product(i, f"Pot {i}", "espresso", "5.00") for i in range(1041, 1401)]
    index = MemoryIndex([*cups, *both, *pots])
    hits = ProductSearch(index).search("espresso ceramic", limit=100)  # type: ignore[arg-type]
    assert sorted(h.id for h in hits) == list(range(1001, 1041))
    # espresso's 400 end in the second round; ceramic's 1,040 are read on (under 50 a candidate)
    assert _postings_read(index) == {"espresso": 400, "ceramic": 1040}
    assert sorted(index.items_read) == list(range(1001, 1041))


def _postings_read(index: MemoryIndex) -> dict[str, int]:
    read: dict[str, int] = {}
    for token, n in index.posting_reads:
        read[token] = read.get(token, 0) + n
    return read
