"""``/v1/events``: a row's history from the event store, and its state at a time.

The key is ``42`` for a table with a one-column key (its column read from the stored events) or
a JSON object (``{"order_id":1,"line":2}``), URL-encoded. ``at`` is an ISO-8601 time with its
zone; the state's default is now.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from read_models import InvalidQueryError
from read_models.events import EventStoreReader, parse_key

from query_api.backends import Backends
from query_api.errors import NotFound
from query_api.models import History, RowState
from query_api.responses import json_response
from query_api.routes._common import ERRORS, READ, backends

router = APIRouter(prefix="/events", tags=["event store"], dependencies=READ, responses=ERRORS)
Backend = Annotated[Backends, Depends(backends)]
Table = Annotated[
    str, Path(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$", max_length=127)
]
Key = Annotated[str, Path(min_length=1, max_length=2000)]
At = Annotated[
    datetime | None, Query(description="ISO-8601 with a zone, e.g. 2026-12-01T00:00:00Z")
]


def _aware(at: datetime | None) -> datetime | None:
    if at is not None and at.utcoffset() is None:
        raise InvalidQueryError("`at` needs a time zone (e.g. 2026-12-01T00:00:00Z)")
    return at


def _key(store: EventStoreReader, table: str, key: str) -> dict[str, Any]:
    columns = None if key.lstrip().startswith("{") else store.key_columns(table)
    try:
        return parse_key(key, columns)
    except ValueError as exc:
        raise InvalidQueryError(f"key: {exc}") from None


@router.get("/{table}/{key}/history", response_model=History)
async def history(found: Backend, table: Table, key: Key, at: At = None) -> Response:
    """Every stored change of the row in source order (those by ``at``, if given)."""
    when = _aware(at)
    store: EventStoreReader = found.require("events")

    def read() -> tuple[dict[str, Any], list[Any]]:
        parsed = _key(store, table, key)
        return parsed, store.history(table, parsed, at=when)

    parsed, events = await found.call("events", read)
    if not events:
        raise NotFound(f"no events for {table} {key}")
    return json_response({"table": table, "key": parsed, "events": [e.to_dict() for e in events]})


@router.get("/{table}/{key}/state", response_model=RowState)
async def state(found: Backend, table: Table, key: Key, at: At = None) -> Response:
    """The row as it was at ``at`` (now by default): null if absent, deleted or swept then."""
    when = _aware(at) or datetime.now(UTC)
    store: EventStoreReader = found.require("events")

    def read() -> tuple[dict[str, Any], tuple[dict[str, Any] | None, int]]:
        parsed = _key(store, table, key)
        return parsed, store.state(table, parsed, when)

    parsed, (row, count) = await found.call("events", read)
    if count == 0:
        raise NotFound(f"no events for {table} {key} by {when.isoformat()}")
    return json_response(
        {"table": table, "key": parsed, "at": when.isoformat(), "state": row, "events": count}
    )
