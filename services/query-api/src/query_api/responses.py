"""JSON responses built with orjson (decimals as exact strings, times ISO-8601), and the
statistics' conditional responses: a strong ``ETag`` of the body, ``304 Not Modified`` when the
client's ``If-None-Match`` names it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

import orjson
from fastapi import Request
from fastapi.responses import Response

from query_api._etag import etag_of, matches

__all__ = ["JSON", "conditional", "json_body", "json_response"]

JSON: Final = "application/json"
_OPTIONS: Final = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    raise TypeError(f"no JSON form for {type(value).__name__}")


def json_body(data: Any) -> bytes:
    return orjson.dumps(data, default=_default, option=_OPTIONS)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json_body(data), status, media_type=JSON)


def conditional(request: Request, data: Any) -> Response:
    """``data`` with its strong ETag, or 304 if ``If-None-Match`` matches it (no body)."""
    body = json_body(data)
    tag = etag_of(body)
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(body, 200, headers=headers, media_type=JSON)
