"""Values in the store's text form (pure): timestamps, normalised JSON, keys and their hash.

``_rows`` builds every row with these. A key's stored form and hash (``key_json``,
``key_hash``) and the JSON form of values belong to ``read_models.events``, whose history read
looks a key up by them: one definition for the writer and the reader.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from read_models.events import JSON_OPTIONS as _OPTS
from read_models.events import json_default as _default

_SECOND_CACHE: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as a timestamptz literal (``2024-01-02 03:04:05.123+00``).

    Consecutive changes share their second, so its text is cached (a few hundred entries).
    """
    second, milli = divmod(ms, 1000)
    prefix = _SECOND_CACHE.get(second)
    if prefix is None:
        if len(_SECOND_CACHE) > 4096:
            _SECOND_CACHE.clear()
        prefix = datetime.fromtimestamp(second, UTC).isoformat(" ")[:19]
        _SECOND_CACHE[second] = prefix
    return f"{prefix}.{milli:03d}+00"


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _row_json(row: dict[str, Any] | None) -> str | None:
    if row is None:
        return None
    return orjson.dumps(row, default=_default, option=_OPTS).decode()


def pg_text_array(items: Iterable[str]) -> str:
    """A ``text[]`` literal (``{"a","b"}``) with its elements quoted and escaped."""
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return "{" + ",".join(quoted) + "}"
