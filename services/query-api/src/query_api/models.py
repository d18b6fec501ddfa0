"""The response models: what ``/openapi.json`` documents for every route. Handlers build their
JSON with orjson directly (``_json``) and these models describe it; decimals are strings
(exact), times ISO-8601."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "Availability",
    "CustomerStats",
    "DeadLetterCount",
    "DeadLetterSummary",
    "History",
    "LowStock",
    "Problem",
    "ProductStats",
    "ReportRows",
    "ReportTables",
    "RowState",
    "SearchHit",
    "SearchPage",
    "UserStats",
]


class Problem(BaseModel):
    """An RFC 9457 problem (``application/problem+json``)."""

    type: str = Field(examples=["/problems/not-found"])
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="validation failures (422 only)"
    )


class CustomerStats(BaseModel):
    customer_id: int
    known: bool = Field(description="present in the source's customers table")
    country: str | None
    orders_count: int
    paid_or_shipped_count: int
    cancelled_count: int
    total_spent: str
    live_orders: int
    avg_order_value: str | None
    first_order_at: str | None
    last_order_at: str | None
    updated_at: str


class ProductStats(BaseModel):
    product_id: int
    name: str | None
    price: str | None
    stock: int | None
    low_stock: bool
    deleted: bool
    units_sold: int
    revenue: str
    item_refs: int
    updated_at: str


class UserStats(BaseModel):
    user_id: str
    total_events: int
    total_purchases: int
    total_spent: str
    last_active: str
    avg_session_duration: str | None
    engagement_score: str
    churn_risk: str
    as_of: str | None = Field(description="the latest user-event time the scores are as of")


class LowStock(BaseModel):
    items: list[ProductStats]


class SearchHit(BaseModel):
    id: int
    name: str
    description: str
    price: str
    stock: int
    in_stock: bool
    updated_at: str | None
    version: str
    name_matches: int
    description_matches: int


class SearchPage(BaseModel):
    items: list[SearchHit]
    next_cursor: str | None = Field(description="the next page's cursor; null on the last page")


class Availability(BaseModel):
    product_id: int
    stock: int | None
    low_stock: bool
    deleted: bool
    available: bool
    version: str | None


class StoredEvent(BaseModel):
    event_id: str
    kind: str
    op: str | None
    key: dict[str, Any] | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    unchanged_columns: list[str]
    source_ts: str | None
    event_time: str
    position: int | None
    lsn: int | None
    tx_id: str | None
    snapshot: bool
    topic: str
    kafka_partition: int
    kafka_offset: int
    version: str | None


class History(BaseModel):
    table: str
    key: dict[str, Any]
    events: list[StoredEvent]


class RowState(BaseModel):
    table: str
    key: dict[str, Any]
    at: str
    state: dict[str, Any] | None = Field(description="null: absent, deleted or swept then")
    events: int = Field(description="how many events made the state")


class ReportTables(BaseModel):
    tables: list[str]


class ReportRows(BaseModel):
    table: str
    snapshot_id: int | None
    columns: list[str]
    rows: list[dict[str, Any]]


class DeadLetterCount(BaseModel):
    error_code: str
    status: str
    rows: int


class DeadLetterSummary(BaseModel):
    counts: list[DeadLetterCount]
    recent: list[dict[str, Any]] = Field(description="the newest rows, payloads as sizes only")
