"""Product search over the index the search indexer maintains: full text, by id, by name prefix,
and the price listing. Used by the indexer's ``cdc search`` and by the query API.

Full text (``ProductSearch.search``): the query goes through the same tokeniser as the documents
(AND semantics). A product holding every query token holds each of them, so the postings of any one
token, read to the end, are enough as candidates; reading a common token's postings to the end is
what is not (a million products may hold "steel"). So the tokens' postings are read a page at a
time, in parallel, pages doubling from ``_FIRST_POSTINGS_PAGE``; once one token's postings are
done, the candidates are the intersection of those done, and the other tokens' are read on only
while they stay under ``_POSTINGS_PER_CANDIDATE`` per candidate (postings are cheap, a candidate's
item read is not: intersecting saves item reads when the lists are of similar size, and a rare word
with a common one reads about the rare word's postings and items and a bounded part of the common
word's). The candidates' product items are fetched, re-checked (a product must hold every query
token, so a posting left behind by an interrupted writer can never produce a wrong hit), filtered
by price and stock, and ranked by the number of query tokens in the name, then in the description,
then by name. A query without tokens (empty text) lists products by price, lowest first (then by
id), through the ``by-price`` index: the buckets overlapping the price range are read in ascending
order, a page at a time, and the listing stops as soon as ``limit`` products are found and no
unread one can rank before them, so it reads about ``limit`` items, not the range. The stock filter
is applied by DynamoDB (a ``FilterExpression``). ``by_name`` reads the ``by-name`` index (exact or
prefix on the normalised name).

Queries stay within DynamoDB's key limits as the writes do: query tokens go through the same
``tokenize`` (a word past ``TOKEN_MAX_BYTES`` becomes the same hashed token the index holds), a
name prefix is cut to the key budget (``name_key``) and a longer one is checked against the
stored name, and an id no product can have is not looked up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, TypeVar

from read_models.errors import InvalidQueryError
from read_models.search._items import NAME_KEY_MAX_BYTES, StoredProduct, name_key
from read_models.search._prices import price_buckets_between, rank_key
from read_models.search._table import SearchTable
from read_models.search._text import normalize_name, tokenize

__all__ = ["ProductSearch", "SearchHit"]

T = TypeVar("T")

# Postings of several tokens, and the candidates' items, are read in parallel.
_READ_CONCURRENCY = 8
# The first page of each query token's postings (then twice as many a page, up to the most).
_FIRST_POSTINGS_PAGE = 256
_MAX_POSTINGS_PAGE = 8192
# A posting is a few dozen bytes of a Query page, a candidate a product item read on its own
# (a read unit or half of one each): the other tokens' postings are still read (and intersected,
# so fewer items are read) while they stay under this many per candidate.
_POSTINGS_PER_CANDIDATE = 50
# Keys per BatchGetItem (DynamoDB's limit).
_BATCH_GET = 100
# Product ids are the source's integer keys; a larger number names no product (and its key
# could pass DynamoDB's 2,048-byte limit).
_MAX_ID = 2**63 - 1
# A stored ``by-name`` key is cut only past NAME_KEY_MAX_BYTES, at a character boundary (at
# most 4 bytes each): a key this long may stand for a longer name.
_MAYBE_CUT_BYTES = NAME_KEY_MAX_BYTES - 3


@dataclass(frozen=True, slots=True)
class SearchHit:
    id: int
    name: str
    description: str
    price: Decimal
    stock: int
    in_stock: bool
    updated_at: str | None
    #: the source version of the indexed change (``cdc_events.source_version``); ``""`` for an
    #: item of the release that versioned by Kafka offset, until its next change
    version: str
    name_matches: int = 0
    description_matches: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "price": format(self.price, "f"),
            "stock": self.stock,
            "in_stock": self.in_stock,
            "updated_at": self.updated_at,
            "version": self.version,
            "name_matches": self.name_matches,
            "description_matches": self.description_matches,
        }


def _hit(product: StoredProduct, query_tokens: Iterable[str] = ()) -> SearchHit:
    tokens = list(query_tokens)
    return SearchHit(
        id=product.id,
        name=product.name,
        description=product.description,
        price=product.price,
        stock=product.stock,
        in_stock=product.in_stock,
        updated_at=product.updated_at,
        version=product.version,
        name_matches=sum(1 for t in tokens if t in product.name_tokens),
        description_matches=sum(1 for t in tokens if t in product.desc_tokens),
    )


def _price(value: Decimal | float | str | None, what: str) -> Decimal | None:
    if value is None:
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise InvalidQueryError(f"{what} is not a number: {value!r}") from None
    if not price.is_finite() or price < 0:
        raise InvalidQueryError(f"{what} must be a non-negative number, got {value!r}")
    return price


class ProductSearch:
    """Read side of the index. Thread-safe (one boto3 client, no per-call state)."""

    def __init__(self, table: SearchTable) -> None:
        self.table = table
        # One pool for the parallel reads of every search (a pool per search would start and
        # join its threads each time); its threads start on first use.
        self._pool = ThreadPoolExecutor(_READ_CONCURRENCY, thread_name_prefix="search-read")

    @classmethod
    def connect(
        cls,
        table_name: str = "product-search-index",
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> ProductSearch:
        return cls(SearchTable.connect(table_name, region=region, endpoint_url=endpoint_url))

    def search(
        self,
        query: str,
        min_price: Decimal | float | str | None = None,
        max_price: Decimal | float | str | None = None,
        in_stock: bool | None = None,
        limit: int = 20,
    ) -> list[SearchHit]:
        """Products holding every token of ``query``, best first (see the module docstring)."""
        low, high = _price(min_price, "min_price"), _price(max_price, "max_price")
        if low is not None and high is not None and low > high:
            raise InvalidQueryError(f"min_price {low} is above max_price {high}")
        if limit < 1:
            raise InvalidQueryError(f"limit must be at least 1, got {limit}")
        tokens = tokenize(query)
        if query.strip() and not tokens:
            return []  # only stop words or punctuation: nothing can match every token
        if not tokens:
            return [_hit(p) for p in self._by_price(low, high, in_stock, limit)]
        candidates = self._by_tokens(tokens)
        required = set(tokens)
        hits = [
            p
            for p in candidates
            if not p.deleted
            and required <= p.tokens
            and (low is None or p.price >= low)
            and (high is None or p.price <= high)
            and (in_stock is None or p.in_stock == in_stock)
        ]
        hits.sort(key=lambda p: (*rank_key(tokens, p.name_tokens, p.desc_tokens, p.name), p.id))
        return [_hit(p, tokens) for p in hits[:limit]]

    def get(self, product_id: int) -> SearchHit | None:
        if abs(product_id) > _MAX_ID:
            return None
        stored = self.table.read_product(product_id, consistent=False)
        if stored is None or stored.deleted:
            return None
        return _hit(stored)

    def by_name(self, prefix: str, *, exact: bool = False, limit: int = 20) -> list[SearchHit]:
        """Products whose normalised name equals (``exact``) or starts with ``prefix``, by name."""
        name_norm = normalize_name(prefix)
        if not name_norm:
            return []
        key = name_key(name_norm)
        if len(key.encode()) < _MAYBE_CUT_BYTES:
            # Shorter than any cut key: the key answers exactly (a prefix, or an uncut name).
            found = self.table.query_name(key, exact=exact, limit=limit)
            return [_hit(p) for p in found if not p.deleted]
        # The key may be a cut: read every product sharing it (names sharing 1 KB are few) and
        # compare the whole normalised prefix with the stored name.
        matches = []
        for p in self.table.query_name(key, exact=exact, limit=None):
            norm = normalize_name(p.name)
            if not p.deleted and (norm == name_norm if exact else norm.startswith(name_norm)):
                matches.append((norm, p.id, p))
        matches.sort(key=lambda m: (m[0], m[1]))  # by name, as the index orders shorter keys
        return [_hit(p) for _, _, p in matches[:limit]]

    def _by_tokens(self, tokens: list[str]) -> list[StoredProduct]:
        ids = self.table.posting_ids(tokens[0]) if len(tokens) == 1 else self._candidates(tokens)
        # The candidates' items in parallel requests (a BatchGetItem takes 100 keys).
        ordered = sorted(ids)
        chunks = [ordered[i : i + _BATCH_GET] for i in range(0, len(ordered), _BATCH_GET)]
        found = self._map(lambda c: self.table.read_products(c, consistent=False), chunks)
        return [p for products in found for p in products.values()]

    def _candidates(self, tokens: list[str]) -> set[int]:
        """The candidates of a query of several tokens: the intersection of the postings read
        to the end, reading every token's a page at a time (pages doubling), until each token's
        are done or, once some are, past ``_POSTINGS_PER_CANDIDATE`` times the candidates
        (see the module docstring)."""
        found: dict[str, set[int]] = {t: set() for t in tokens}
        starts: dict[str, Any] = dict.fromkeys(tokens)
        reading = list(tokens)
        complete: list[str] = []
        page = _FIRST_POSTINGS_PAGE
        while True:
            pages = self._map(partial(self._posting_page, size=page, starts=starts), reading)
            for token, (ids, start) in zip(reading, pages, strict=True):
                found[token] |= ids
                starts[token] = start
                if start is None:
                    complete.append(token)
            if complete:
                done = sorted((found[t] for t in complete), key=len)
                candidates = set(done[0]).intersection(*done[1:])
                budget = _POSTINGS_PER_CANDIDATE * len(candidates)
                reading = [t for t in tokens if t not in complete and len(found[t]) < budget]
                if not reading:
                    return candidates
            page = min(page * 2, _MAX_POSTINGS_PAGE)

    def _posting_page(
        self, token: str, *, size: int, starts: dict[str, Any]
    ) -> tuple[set[int], Any]:
        return self.table.posting_page(token, limit=size, start=starts[token])

    def _map(self, fn: Callable[[Any], T], items: list[Any]) -> list[T]:
        """``fn`` over ``items``: in this thread for one, in parallel on the pool for more."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def _by_price(
        self, low: Decimal | None, high: Decimal | None, in_stock: bool | None, limit: int
    ) -> list[StoredProduct]:
        """The ``limit`` cheapest products in [low, high] (then by id), reading pages of the
        buckets in ascending order until no unread product can rank before the last one kept:
        a bucket holds one price range and its pages come in ascending price, so once a page
        ends above the ``limit``-th price (or the bucket ends), nothing later ranks before it.
        """
        lo = None if low is None else format(low, "f")
        hi = None if high is None else format(high, "f")
        found: list[StoredProduct] = []
        for bucket in price_buckets_between(low, high):
            start: dict[str, Any] | None = None
            while True:
                page, start = self.table.query_price(
                    bucket, lo, hi, in_stock=in_stock, limit=limit + 1, start=start
                )
                found.extend(p for p in page if not p.deleted)
                found.sort(key=lambda p: (p.price, p.id))
                done = (
                    len(found) >= limit and bool(page) and page[-1].price > found[limit - 1].price
                )
                if start is None or done:
                    break
            if len(found) >= limit:
                break
        return found[:limit]
