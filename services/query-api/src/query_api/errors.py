"""Every error as an RFC 9457 problem (``application/problem+json``; ``_problems``): the
exception handlers ``create_app`` installs, and the API's own ``NotFound``.

| raised | status | type |
|---|---|---|
| ``auth.Unauthorized`` | 401 (+ ``WWW-Authenticate``) | ``/problems/unauthorized`` |
| ``auth.Forbidden`` | 403 | ``/problems/forbidden`` |
| ``NotFound``, ``read_models.NotFoundError`` | 404 | ``/problems/not-found`` |
| validation errors, ``InvalidQueryError``, a bad cursor | 422 | ``/problems/invalid-request`` |
| ``read_models.UnavailableError`` (down or unset) | 503 | ``/problems/backend-unavailable`` |
| ``backends.BackendTimeout`` | 504 | ``/problems/backend-timeout`` |
| any other HTTP error (an unknown path, a wrong method) | its own | ``about:blank`` |
| anything else | 500 | ``about:blank`` (logged with its traceback) |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from read_models import InvalidQueryError, NotFoundError, UnavailableError
from starlette.exceptions import HTTPException as StarletteHTTPException

from query_api._cursor import InvalidCursor
from query_api._problems import PROBLEM_JSON, problem, problem_body
from query_api.auth import Forbidden, Unauthorized
from query_api.backends import BackendTimeout

__all__ = ["NotFound", "install_handlers", "problem_response"]

_log = structlog.get_logger("query_api")


class NotFound(Exception):
    """What the request names does not exist (a customer, a product, a row)."""


def problem_response(
    request: Request,
    status: int,
    detail: str,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body = problem(status, detail, request.url.path, slug=slug, **extensions)
    return Response(
        problem_body(body), status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]


def install_handlers(app: FastAPI) -> None:
    """Register the handlers of the table above on ``app``."""

    async def unauthorized(request: Request, exc: Exception) -> Response:
        challenge = {"WWW-Authenticate": 'Bearer realm="query-api", ApiKey header="X-API-Key"'}
        return problem_response(request, 401, str(exc), "unauthorized", challenge)

    async def forbidden(request: Request, exc: Exception) -> Response:
        return problem_response(request, 403, str(exc), "forbidden")

    async def not_found(request: Request, exc: Exception) -> Response:
        return problem_response(request, 404, str(exc), "not-found")

    async def invalid(request: Request, exc: Exception) -> Response:
        return problem_response(request, 422, str(exc), "invalid-request")

    async def validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem_response(request, 422, detail, "invalid-request", errors=errors)

    async def unavailable(request: Request, exc: Exception) -> Response:
        _log.warning("backend unavailable", path=request.url.path, error=str(exc))
        return problem_response(request, 503, str(exc), "backend-unavailable")

    async def timeout(request: Request, exc: Exception) -> Response:
        _log.warning("backend timeout", path=request.url.path, error=str(exc))
        return problem_response(request, 504, str(exc), "backend-timeout")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(request, exc.status_code, str(exc.detail), None, exc.headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        _log.exception("unhandled error", path=request.url.path)
        return problem_response(request, 500, "an unexpected error; it has been logged")

    app.add_exception_handler(Unauthorized, unauthorized)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(InvalidQueryError, invalid)
    app.add_exception_handler(InvalidCursor, invalid)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(UnavailableError, unavailable)
    app.add_exception_handler(BackendTimeout, timeout)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
