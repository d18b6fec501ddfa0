"""A key's stored form and hash, and the JSON form of values (pure).

The event store looks a row's history up by ``key_hash(table, key_json(key))`` (an indexed
``bigint``) and compares ``key`` as JSON: the writer (``event_store_writer._values``) stores
both with these functions and the reader (``_history``) computes them the same way, so a row
written by one is found by the other.
"""

from __future__ import annotations

import base64
import hashlib
from decimal import Decimal
from typing import Any, Final

import orjson

__all__ = ["JSON_OPTIONS", "json_default", "key_hash", "key_json"]

_SEP: Final = "\x1f"

#: The normalised form written by orjson directly (no intermediate dicts): UTC datetimes end in
#: "Z" and drop a zero fraction, dates and times are ISO, UUIDs their text, as in
#: ``cdc_events``' ``to_dict()``; decimals and bytes go through ``json_default``. A unit test of
#: the writer checks the two forms agree on every golden record.
JSON_OPTIONS: Final = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def json_default(value: Any) -> Any:
    """orjson's ``default``: a decimal as its exact text, bytes as base64."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"no JSON form for {type(value).__name__}")


def key_json(key: Any) -> str | None:
    """A key in its stored form: normalised JSON with sorted keys (so equal keys are equal text)."""
    if key is None:
        return None
    return orjson.dumps(
        key, default=json_default, option=JSON_OPTIONS | orjson.OPT_SORT_KEYS
    ).decode()


# Hash states fed with "table US", one per table: copying one is cheaper than a new hash.
_MAX_TABLES: Final = 4096
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
