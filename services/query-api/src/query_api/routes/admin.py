"""``/v1/admin`` (scope ``admin``): the event store's dead-letter summary: counts by error code
and status, and the newest rows (their payloads as sizes only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from read_models.events import STATUSES, EventStoreReader, Selection

from query_api.backends import Backends
from query_api.models import DeadLetterSummary
from query_api.responses import json_response
from query_api.routes._common import ADMIN, ERRORS, backends

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=ADMIN, responses=ERRORS)
Backend = Annotated[Backends, Depends(backends)]


@router.get("/dead-letters", response_model=DeadLetterSummary)
async def dead_letters(
    found: Backend,
    status: Annotated[str | None, Query(pattern="^(" + "|".join(STATUSES) + ")$")] = None,
    topic: Annotated[str | None, Query(max_length=249)] = None,
    code: Annotated[str | None, Query(max_length=100)] = None,
    recent: Annotated[int, Query(ge=0, le=500, description="newest rows listed")] = 20,
) -> Response:
    """Dead-lettered records by error code and status, and the newest of them."""
    store: EventStoreReader = found.require("events")
    selection = Selection(status=status, topic=topic, code=code)

    def read() -> tuple[list[tuple[str, str, int]], list[dict[str, object]]]:
        counts = store.dead_letter_counts(selection)
        rows = store.dead_letters(selection, recent) if recent else []
        return counts, [r.summary() for r in rows]

    counts, rows = await found.call("events", read)
    return json_response(
        {
            "counts": [{"error_code": c, "status": s, "rows": n} for c, s, n in counts],
            "recent": rows,
        }
    )
