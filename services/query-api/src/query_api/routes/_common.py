"""What every router shares: the backends of the running app, the error responses each
route documents, and the dependencies of the two scopes."""

from __future__ import annotations

from typing import Any, Final

from fastapi import Depends, Request

from query_api.auth import require
from query_api.backends import Backends
from query_api.models import Problem

__all__ = ["ADMIN", "ERRORS", "READ", "backends"]

READ: Final = [Depends(require("read"))]
ADMIN: Final = [Depends(require("admin"))]

_PROBLEM: Final = {"model": Problem, "content": {"application/problem+json": {}}}
#: The problems a read route can answer (documented in the OpenAPI of each route).
ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    status: {**_PROBLEM, "description": text}
    for status, text in (
        (401, "no API key, or an unknown one"),
        (403, "the key's scope does not allow this"),
        (404, "not found"),
        (422, "invalid parameters"),
        (503, "a read model is unavailable or not configured"),
        (504, "a read model did not answer in time"),
    )
}


async def backends(request: Request) -> Backends:
    """The app's backends (async: a sync dependency would cost a thread hop per request)."""
    found: Backends = request.app.state.backends
    return found
