"""``/v1/products``: the search index (full text, name prefix, price range; opaque cursor
pagination), one product by id, and its availability from the ``inventory-realtime``
projection.

Pages: each answer holds at most ``limit`` items and ``next_cursor`` (null on the last page).
The cursor is the next page's position in the answer's order, bound to the query
(``_cursor``); the index is read from the first hit for each page (``ProductSearch`` ranks
the whole answer), up to ``MAX_OFFSET`` items deep.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from read_models.search import SearchHit

from query_api._cursor import MAX_OFFSET, InvalidCursor, decode_cursor, encode_cursor
from query_api.backends import Backends
from query_api.errors import NotFound
from query_api.models import Availability, SearchPage
from query_api.models import SearchHit as SearchHitModel
from query_api.responses import json_response
from query_api.routes._common import ERRORS, READ, backends

router = APIRouter(prefix="/products", tags=["products"], dependencies=READ, responses=ERRORS)
Backend = Annotated[Backends, Depends(backends)]
Limit = Annotated[int, Query(ge=1, le=100, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the last page")]
Price = Annotated[Decimal | None, Query(ge=0, max_digits=20, decimal_places=2)]
ProductId = Annotated[int, Path(ge=0, le=2**63 - 1)]


async def _page(
    found: Backends,
    params: dict[str, Any],
    cursor: str | None,
    limit: int,
    read: Callable[[int], list[SearchHit]],
) -> Response:
    """Items ``[offset, offset + limit)`` of what ``read(n)`` (the first ``n`` hits) answers."""
    offset = decode_cursor(cursor, params)
    if offset + limit > MAX_OFFSET + 100:
        raise InvalidCursor(f"pages end at {MAX_OFFSET} items: narrow the query")
    hits = await found.call("search", read, offset + limit + 1)
    page = hits[offset : offset + limit]
    more = len(hits) > offset + limit and offset + limit <= MAX_OFFSET
    return json_response(
        {
            "items": [h.to_dict() for h in page],
            "next_cursor": encode_cursor(offset + limit, params) if more else None,
        }
    )


@router.get("/search", response_model=SearchPage)
async def search(
    found: Backend,
    q: Annotated[str, Query(max_length=1000, description="words; empty lists by price")] = "",
    min_price: Price = None,
    max_price: Price = None,
    in_stock: bool | None = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """Products holding every word of ``q``, best first (more words in the name, then in the
    description, then by name); without words, by price (lowest first)."""
    index = found.require("search")
    params = {"q": q, "min": min_price, "max": max_price, "stock": in_stock, "kind": "search"}
    return await _page(
        found,
        params,
        cursor,
        limit,
        lambda n: index.search(q, min_price, max_price, in_stock, limit=n),
    )


@router.get("/by-name", response_model=SearchPage)
async def by_name(
    found: Backend,
    prefix: Annotated[str, Query(min_length=1, max_length=2000)],
    exact: bool = False,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """Products whose normalised name starts with (or, ``exact``, equals) ``prefix``, by name."""
    index = found.require("search")
    params = {"prefix": prefix, "exact": exact, "kind": "name"}
    return await _page(
        found, params, cursor, limit, lambda n: index.by_name(prefix, exact=exact, limit=n)
    )


@router.get("/by-price", response_model=SearchPage)
async def by_price(
    found: Backend,
    min_price: Price = None,
    max_price: Price = None,
    in_stock: bool | None = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """Products priced in ``[min_price, max_price]``, lowest first (then by id)."""
    index = found.require("search")
    params = {"min": min_price, "max": max_price, "stock": in_stock, "kind": "price"}
    return await _page(
        found,
        params,
        cursor,
        limit,
        lambda n: index.search("", min_price, max_price, in_stock, limit=n),
    )


@router.get("/{product_id}", response_model=SearchHitModel)
async def product(found: Backend, product_id: ProductId) -> Response:
    """One product as the search index holds it."""
    index = found.require("search")
    hit = await found.call("search", index.get, product_id)
    if hit is None:
        raise NotFound(f"no product {product_id} in the search index")
    return json_response(hit.to_dict())


@router.get("/{product_id}/availability", response_model=Availability)
async def availability(found: Backend, product_id: ProductId) -> Response:
    """The product's stock as the ``inventory-realtime`` projection holds it."""
    inventory = found.require("inventory")
    item = await found.call("inventory", inventory.availability, product_id)
    if item is None:
        raise NotFound(f"no availability for product {product_id}")
    return json_response(item.to_dict())
