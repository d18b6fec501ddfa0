"""Opaque pagination cursors (pure).

A cursor is the position of the next page (an offset into the answer's order) bound to the
query it belongs to: base64url of ``{"o": offset, "q": fingerprint}``, where the fingerprint is
a short hash of the query's parameters (the page size excluded). A cursor of another query, or
one that does not decode, is an ``InvalidCursor`` (a 422 for the client). Clients must treat it
as opaque: the form may change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any, Final

import orjson

__all__ = ["MAX_OFFSET", "InvalidCursor", "decode_cursor", "encode_cursor", "fingerprint"]

#: The deepest page start served: the search index is read from the first hit for every page,
#: so paging past this is a scan a client should narrow its query for instead.
MAX_OFFSET: Final = 1000


class InvalidCursor(ValueError):
    """A cursor that does not decode or belongs to another query."""


def fingerprint(params: Mapping[str, Any]) -> str:
    """A short hash of the query's parameters (order-insensitive)."""
    text = orjson.dumps(
        {k: v for k, v in params.items() if v is not None},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(text).hexdigest()[:16]


def encode_cursor(offset: int, params: Mapping[str, Any]) -> str:
    raw = orjson.dumps({"o": offset, "q": fingerprint(params)})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, params: Mapping[str, Any]) -> int:
    """The offset ``cursor`` stands for (0 without one)."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidCursor("the cursor is not one this API issued") from None
    if not isinstance(value, dict) or not isinstance(value.get("o"), int):
        raise InvalidCursor("the cursor is not one this API issued")
    if value.get("q") != fingerprint(params):
        raise InvalidCursor("the cursor belongs to another query: repeat the query's parameters")
    offset: int = value["o"]
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidCursor(f"the cursor's position is past {MAX_OFFSET}")
    return offset
