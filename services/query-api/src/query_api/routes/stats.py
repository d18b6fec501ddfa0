"""``/v1/stats``: a customer's, product's or user's statistics (with strong ETags: a client
polling them gets ``304`` while nothing changed) and the products low on stock."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from query_api.backends import Backends
from query_api.errors import NotFound
from query_api.models import CustomerStats, LowStock, ProductStats, UserStats
from query_api.responses import conditional, json_response
from query_api.routes._common import ERRORS, READ, backends

router = APIRouter(prefix="/stats", tags=["statistics"], dependencies=READ, responses=ERRORS)
Backend = Annotated[Backends, Depends(backends)]


async def _one(request: Request, found: Backends, kind: str, key: int | str) -> Response:
    stats = found.require("stats")
    row: dict[str, Any] | None = await found.call("stats", stats.get, kind, key)
    if row is None:
        raise NotFound(f"no statistics for {kind} {key}")
    return conditional(request, row)


@router.get("/customers/{customer_id}", response_model=CustomerStats)
async def customer(
    request: Request, found: Backend, customer_id: Annotated[int, Path(ge=0, le=2**63 - 1)]
) -> Response:
    """Orders, spend and first/last order of one customer."""
    return await _one(request, found, "customer", customer_id)


@router.get("/products/{product_id}", response_model=ProductStats)
async def product(
    request: Request, found: Backend, product_id: Annotated[int, Path(ge=0, le=2**63 - 1)]
) -> Response:
    """Stock, units sold, revenue and the low-stock flag of one product."""
    return await _one(request, found, "product", product_id)


@router.get("/users/{user_id}", response_model=UserStats)
async def user(
    request: Request, found: Backend, user_id: Annotated[str, Path(min_length=1, max_length=200)]
) -> Response:
    """Activity, spend, engagement score and churn risk of one user."""
    return await _one(request, found, "user", user_id)


@router.get("/low-stock", response_model=LowStock)
async def low_stock(found: Backend, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    """Live products below the low-stock threshold, lowest stock first."""
    stats = found.require("stats")
    rows = await found.call("stats", stats.low_stock, limit)
    return json_response({"items": rows})
