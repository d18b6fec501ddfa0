"""``/v1/lake``: the data lake's report tables (Iceberg, materialized by the analytics
flusher), listed and read at their current snapshot, optionally the windows starting in
``[window_from, window_to)`` and at most ``limit`` rows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from read_models import InvalidQueryError
from read_models.lake import LakeReports

from query_api.backends import Backends
from query_api.models import ReportRows, ReportTables
from query_api.responses import json_response
from query_api.routes._common import ERRORS, READ, backends

router = APIRouter(prefix="/lake", tags=["data lake"], dependencies=READ, responses=ERRORS)
Backend = Annotated[Backends, Depends(backends)]
Window = Annotated[datetime | None, Query(description="ISO-8601 with a zone")]


@router.get("/reports", response_model=ReportTables)
async def reports(found: Backend) -> Response:
    """The report tables the lake holds (materialized at least once)."""
    lake: LakeReports = found.require("lake")
    return json_response({"tables": await found.call("lake", lake.tables)})


@router.get("/reports/{name}", response_model=ReportRows)
async def report(
    found: Backend,
    name: Annotated[str, Path(pattern=r"^[a-z_]+$", max_length=64)],
    window_from: Window = None,
    window_to: Window = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Response:
    """The rows of one report table, in window order where it has windows."""
    for bound in (window_from, window_to):
        if bound is not None and bound.utcoffset() is None:
            raise InvalidQueryError("window bounds need a time zone (e.g. 2026-12-01T00:00:00Z)")
    lake: LakeReports = found.require("lake")
    page = await found.call(
        "lake", lake.read, name, window_from=window_from, window_to=window_to, limit=limit
    )
    return json_response(
        {
            "table": page.table,
            "snapshot_id": page.snapshot_id,
            "columns": page.columns,
            "rows": page.rows,
        }
    )
