"""Values in the store's text form (pure): timestamps, normalised JSON, keys and their hash.

``_rows`` builds every row with these; the read side (``store._history_reads``) hashes a key
the same way.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

_SEP = "\x1f"

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


# The normalised form written by orjson directly (no intermediate dicts): UTC datetimes end in
# "Z" and drop a zero fraction, dates and times are ISO, UUIDs their text, as in
# ``to_dict()``; decimals and bytes go through ``_default``. A unit test checks the two forms
# agree on every golden record.
_OPTS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"no JSON form for {type(value).__name__}")


def key_json(key: Any) -> str | None:
    """A key in its stored form: normalised JSON with sorted keys (so equal keys are equal text)."""
    if key is None:
        return None
    return orjson.dumps(key, default=_default, option=_OPTS | orjson.OPT_SORT_KEYS).decode()


# Hash states fed with "table US", one per table: copying one is cheaper than a new hash.
_MAX_TABLES = 4096
_table_hashes: dict[str | None, Any] = {}


def key_hash(table: str | None, key: str | None) -> int | None:
    """64-bit hash of table and stored key JSON: the cheap index behind a row's history.

    ``blake2b("<table> US <key>", digest_size=8)`` as a signed big-endian integer.
    """
    if key is None:
        return None
    prefix = _table_hashes.get(table)
    if prefix is None:
        if len(_table_hashes) >= _MAX_TABLES:
            _table_hashes.clear()
        prefix = hashlib.blake2b(f"{table or ''}{_SEP}".encode(), digest_size=8)
        _table_hashes[table] = prefix
    digest = prefix.copy()
    digest.update(key.encode())
    return int.from_bytes(digest.digest(), "big", signed=True)


def _row_json(row: dict[str, Any] | None) -> str | None:
    if row is None:
        return None
    return orjson.dumps(row, default=_default, option=_OPTS).decode()


def pg_text_array(items: Iterable[str]) -> str:
    """A ``text[]`` literal (``{"a","b"}``) with its elements quoted and escaped."""
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return "{" + ",".join(quoted) + "}"
