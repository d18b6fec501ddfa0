"""Stable ids for changes: equal for a Kafka redelivery and for a Debezium re-emit.

Consumers deduplicate on ``event_id`` (the event store's primary key, the stats aggregator's
"seen" set), so it must not depend on anything that differs between two deliveries of one
change: not the Kafka offset (a re-emit after a connector restart lands at a new offset), not
the envelope's ``ts_ms`` (the time Debezium processed the change, which a re-emit changes).

Formula (version ``v1``)::

    event_id = hex(blake2b(digest_size=16,
        "v1" US connector US db US schema US table US op US position US canonical_key_json))

with US the unit separator ``\\x1f``, missing parts as empty strings, and ``position``:

* PostgreSQL: ``pg:<source.lsn>:<source.txId>``. The LSN of the change's WAL record is unique
  per change and identical on re-emit; the txId guards against LSN reuse across a
  ``pg_resetwal``.
* MySQL: ``mysql:<file>:<pos>:<row>``: the binlog event and the row within it.
* Another connector: the canonical JSON of its ``source`` block without ``version`` (which an
  upgrade changes) and ``ts_us``/``ts_ns`` (derived from ``ts_ms``).
* The ExtractNewRecordState (unwrap) form: whatever ``add.fields`` provided (``lsn``, ``txId``,
  ``file``/``pos``/``row``), else ``ts:<source.ts_ms>``.

``canonical_key_json`` is the key's payload (before logical-type decoding) dumped with sorted
keys; a key (or another connector's ``source`` block) nested deeper than orjson writes (254
levels) has no id and raises ``ParseError("too_large")``. Snapshot reads (``op: r``) all carry
the snapshot's LSN, so the key is what keeps their ids apart.

Limits: ``source.lsn`` is a position, not an order: changes of overlapping PostgreSQL
transactions interleave in LSN order but are emitted in commit order, so never compare ids or
LSNs to order events (``source_version`` orders the changes of a row). ``source.sequence`` is
not part of the id. A new snapshot (a re-run after a
failed one, or a blocking/incremental snapshot) reads the rows at a new position: new ids, by
design (it is a new read). The unwrap form without ``lsn`` in ``add.fields`` falls back to the
millisecond commit time: two changes of one row by one operation in one millisecond collide.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import orjson

from cdc_events._errors import ParseError

_SEP = "\x1f"
# Hash states fed with "v1" US connector US db US schema US table US, one per table: copying
# one is cheaper than hashing that text again. Bounded like the parser's other caches.
_MAX_PREFIXES: Final = 4096
_prefixes: dict[tuple[str | None, str | None, str | None, str | None], Any] = {}


def canonical_json(value: Any, what: str) -> bytes:
    """``value`` as JSON with sorted keys; ``too_large`` if it nests deeper than orjson writes."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:  # the only cause for a value orjson parsed
        raise ParseError(
            "too_large", f"{what}: nested deeper than the 254 levels the parser re-serialises"
        ) from exc


def canonical_key(raw_key: Any) -> bytes:
    if raw_key is None:
        return b""
    return canonical_json(raw_key, "key")


def position(source: dict[str, Any]) -> str:
    """The source position part of the id, from a raw ``source`` block."""
    connector = source.get("connector")
    if connector == "postgresql":
        return f"pg:{source.get('lsn')}:{source.get('txId')}"
    if connector == "mysql":
        return f"mysql:{source.get('file')}:{source.get('pos')}:{source.get('row')}"
    rest = {k: v for k, v in source.items() if k not in ("version", "ts_us", "ts_ns")}
    return "src:" + canonical_json(rest, "source").decode()


def change_event_id(
    connector: str | None,
    db: str | None,
    schema: str | None,
    table: str | None,
    op: str,
    pos: str,
    key: bytes,
) -> str:
    table_id = (connector, db, schema, table)
    prefix = _prefixes.get(table_id)
    if prefix is None:
        text = _SEP.join(("v1", connector or "", db or "", schema or "", table or "", ""))
        prefix = hashlib.blake2b(text.encode(), digest_size=16)
        if len(_prefixes) >= _MAX_PREFIXES:
            _prefixes.clear()
        _prefixes[table_id] = prefix
    digest = prefix.copy()
    digest.update(f"{op}{_SEP}{pos}{_SEP}".encode())
    digest.update(key)
    hexdigest: str = digest.hexdigest()
    return hexdigest


def other_event_id(*parts: str) -> str:
    """Id of a transaction boundary or schema change: a hash of what identifies it."""
    return hashlib.blake2b(_SEP.join(("v1", *parts)).encode(), digest_size=16).hexdigest()
