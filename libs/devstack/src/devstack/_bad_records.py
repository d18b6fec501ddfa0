"""Building the bad records of ``devstack.badinput`` (pure: no broker, no I/O).

One malformed record per kind and topic: a CDC record is a mutated copy of a real change event
of its topic (``cdc_bad_value``; it carries the connector's own schema, so kinds that need a
schema are skipped without one), a user event is built from scratch (``user_event_bad_value``).
Each gets its distinctive key, the code the parser (or, for ``store_refused``, the runtime)
must dead-letter it with, and the headers that name it. ``badinput`` produces them and accounts
for them; the kinds and what each breaks are listed there.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from devstack.simulator import USER_EVENTS_TOPIC

KINDS: Final = (
    "not_json",
    "bad_utf8",
    "unknown_op",
    "bad_decimal",
    "oversized",
    "missing_field",
    "wrong_type",
)
#: Not a parse failure: a record a store refuses (``build_bad_records(kinds=[STORE_REFUSED])``).
STORE_REFUSED: Final = "store_refused"

#: What the consumer runtime dead-letters a record with when a store refused it for good.
STORE_REJECTED: Final = "store_rejected"
#: The CDC tables where every consumer refuses a ``store_refused`` record (see ``badinput``).
STORE_REFUSED_TABLES: Final = frozenset({"customers"})
# Customer ids of ``store_refused`` records: far above any the simulator creates.
_REFUSED_ID_BASE: Final = 9_000_000_000

#: The ``ParseError`` code the parser raises for each kind (checked by the unit tests).
CDC_CODES: Final[dict[str, str]] = {
    "not_json": "not_json",
    "bad_utf8": "bad_utf8",
    "unknown_op": "unknown_op",
    "bad_decimal": "bad_decimal",
    "oversized": "too_large",
    "missing_field": "missing_field",
    "wrong_type": "type_mismatch",
}
USER_EVENT_CODES: Final[dict[str, str]] = {
    "not_json": "not_json",
    "bad_utf8": "bad_utf8",
    "unknown_op": "invalid_event",
    "bad_decimal": "invalid_event",
    "oversized": "too_large",
    "missing_field": "missing_field",
    "wrong_type": "invalid_event",
}

HEADER_KIND: Final = "cdc.injected"
HEADER_ID: Final = "cdc.injected.id"

# cdc_events.DEFAULT_MAX_BYTES (1 MiB): the parser rejects a larger key or value (``too_large``).
PARSER_MAX_BYTES: Final = 1 << 20
# Oversized records exceed the parser's limit by 64 KiB: clearly over it, far below the 4 MiB
# the producer here allows (tansu accepts far larger messages; a Kafka broker needs the topic's
# ``max.message.bytes`` raised above ~1.1 MB to accept them, as it would for real large rows).
OVERSIZED_BYTES: Final = PARSER_MAX_BYTES + 64 * 1024

_DECIMAL: Final = "org.apache.kafka.connect.data.Decimal"
_INT_TYPES: Final = ("int8", "int16", "int32", "int64")
_UTF8_MARK: Final = "@@bad-utf8@@"
# A lone continuation byte and a truncated two-byte sequence: invalid UTF-8 in any decoder.
_BAD_UTF8: Final = b"caf\xc3\x28\x80"


@dataclass(frozen=True)
class BadRecord:
    """One malformed record, ready to produce."""

    topic: str
    kind: str
    ident: str
    key: bytes
    value: bytes
    expected_code: str

    @property
    def headers(self) -> list[tuple[str, str | bytes | None]]:
        return [(HEADER_KIND, self.kind.encode()), (HEADER_ID, self.ident.encode())]


def is_user_events(topic: str) -> bool:
    return topic == USER_EVENTS_TOPIC or topic.endswith("user-events")


def expected_code(topic: str, kind: str) -> str:
    if kind == STORE_REFUSED:
        return STORE_REJECTED
    return (USER_EVENT_CODES if is_user_events(topic) else CDC_CODES)[kind]


def _payload(doc: dict[str, Any]) -> dict[str, Any]:
    payload = doc.get("payload", doc)
    if not isinstance(payload, dict):
        raise ValueError("the template is not a change envelope")
    return payload


def _after_fields(doc: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The field schemas of ``after``, or None without a converter schema."""
    schema = doc.get("schema")
    if not isinstance(schema, dict):
        return None
    for f in schema.get("fields") or ():
        if isinstance(f, dict) and f.get("field") == "after" and isinstance(f.get("fields"), list):
            fields: list[dict[str, Any]] = f["fields"]  # the document's own list: edits stick
            return fields
    return None


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = orjson.loads(orjson.dumps(doc))
    return copied


def _string_slot(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A plain text column of ``after`` (the realistic place for odd bytes or a huge value);
    the connector's name in ``source`` when the table has none."""
    payload = _payload(doc)
    after = payload["after"]
    fields = _after_fields(doc)
    if fields is not None:
        for f in fields:
            name = f.get("field")
            if f.get("type") == "string" and "name" not in f and isinstance(after.get(name), str):
                return after, str(name)
    else:
        for name, value in after.items():
            if isinstance(value, str):
                return after, str(name)
    return payload["source"], "name"


def cdc_bad_value(template: bytes, kind: str, rng_token: str = "") -> bytes | None:
    """A malformed copy of ``template`` (a real change event with ``after``), or None if the
    kind cannot be expressed on it (no converter schema for a decimal or a type)."""
    doc = orjson.loads(template)
    payload = _payload(doc)
    if not isinstance(payload.get("after"), dict):
        raise ValueError("the template needs an 'after' row (a c/u/r change event)")
    payload["op"] = "c"
    fields = _after_fields(doc)
    if kind == "not_json":
        raw = orjson.dumps(doc)
        return raw[: len(raw) // 2]
    if kind == "bad_utf8":
        holder, name = _string_slot(doc)
        holder[name] = _UTF8_MARK
        return orjson.dumps(doc).replace(_UTF8_MARK.encode(), _BAD_UTF8, 1)
    if kind == "unknown_op":
        payload["op"] = "x"
        return orjson.dumps(doc)
    if kind == "bad_decimal":
        if fields is None:
            return None
        decimal = next((f for f in fields if f.get("name") == _DECIMAL), None)
        if decimal is None:
            # A table without a decimal column gets one, declared and broken.
            decimal = {
                "type": "bytes",
                "optional": True,
                "name": _DECIMAL,
                "version": 1,
                "parameters": {"scale": "2"},
                "field": "badinput_amount",
            }
            fields.append(decimal)
        payload["after"][decimal["field"]] = "!not base64!"
        return orjson.dumps(doc)
    if kind == "oversized":
        holder, name = _string_slot(doc)
        holder[name] = ""
        room = OVERSIZED_BYTES - len(orjson.dumps(doc))
        holder[name] = (rng_token + "x" * room)[:room]
        return orjson.dumps(doc)
    if kind == "missing_field":
        if fields is not None:
            # A required column without a default (the parser would not fill it in).
            required = [f["field"] for f in fields if not f.get("optional") and "default" not in f]
            required = [n for n in required if n != "id"] or required
            present = [n for n in required if n in payload["after"]]
            if present:
                del payload["after"][present[-1]]
                return orjson.dumps(doc)
        # Schemaless (or nothing required): a create without its new row.
        payload["after"] = None
        return orjson.dumps(doc)
    if kind == "wrong_type":
        if fields is None:
            return None
        ints = [f["field"] for f in fields if f.get("type") in _INT_TYPES and "name" not in f]
        if not ints:
            return None
        payload["after"][ints[-1]] = "not a number"
        return orjson.dumps(doc)
    if kind == STORE_REFUSED:
        return _store_refused(doc, rng_token)
    raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")


def _store_refused(doc: dict[str, Any], token: str) -> bytes | None:
    """A new row whose every text column holds a NUL character, at a source position after
    any real change (so no consumer skips it as an old re-emit before its store sees it)."""
    payload = _payload(doc)
    after = payload["after"]
    fields = _after_fields(doc)
    if fields is not None:  # every plain text column, set or null (``country`` may be null)
        texts = [
            str(f["field"])
            for f in fields
            if f.get("type") == "string" and "name" not in f and f.get("field") != "id"
        ]
    else:
        texts = [n for n, v in after.items() if isinstance(v, str) and n != "id"]
    if not texts or "id" not in after:
        return None
    digest = int(hashlib.sha256(token.encode()).hexdigest()[:8], 16)
    after["id"] = _REFUSED_ID_BASE + digest
    for name in texts:
        after[name] = f"refused\x00{token}"
    source = payload["source"]
    if isinstance(source.get("lsn"), int):
        source["lsn"] = source["lsn"] + (1 << 40)
    if isinstance(source.get("sequence"), str):
        source["sequence"] = orjson.dumps([None, str(source.get("lsn"))]).decode()
    payload["op"] = "c"
    payload["before"] = None
    return orjson.dumps(doc)


def user_event_bad_value(kind: str, ident: str) -> bytes:
    """A malformed user-activity event."""
    event: dict[str, Any] = {
        "event_id": ident,
        "user_id": f"badinput-{ident}",
        "event_type": "click",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "metadata": {"page": "/badinput"},
    }
    if kind == "not_json":
        raw = orjson.dumps(event)
        return raw[: len(raw) // 2]
    if kind == "bad_utf8":
        event["user_id"] = _UTF8_MARK
        return orjson.dumps(event).replace(_UTF8_MARK.encode(), _BAD_UTF8, 1)
    if kind == "unknown_op":
        event["event_type"] = "teleport"
    elif kind == "bad_decimal":
        event["event_type"] = "purchase"
        event["amount"] = "12.3.4"
    elif kind == "oversized":
        event["metadata"]["padding"] = ""
        event["metadata"]["padding"] = "x" * (OVERSIZED_BYTES - len(orjson.dumps(event)))
    elif kind == "missing_field":
        del event["user_id"]
    elif kind == "wrong_type":
        event["timestamp"] = 1_700_000_000
    elif kind == STORE_REFUSED:
        event["user_id"] = f"badinput-\x00{ident}"
    else:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    return orjson.dumps(event)


def build_bad_records(
    topic: str,
    template: bytes | None,
    *,
    kinds: Sequence[str] = KINDS,
    count_per_kind: int = 1,
    run_id: str = "",
) -> tuple[list[BadRecord], list[tuple[str, str, str]]]:
    """The bad records of one topic and the (topic, kind, reason) of kinds not expressible.

    ``template`` is a real change event of the topic (CDC topics); ignored for ``user-events``.
    """
    run_id = run_id or uuid.uuid4().hex[:8]
    table = topic.rsplit(".", 1)[-1]
    out: list[BadRecord] = []
    skipped: list[tuple[str, str, str]] = []
    for kind in kinds:
        if kind not in KINDS and kind != STORE_REFUSED:
            raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
        for n in range(count_per_kind):
            ident = f"{run_id}-{table}-{kind}-{n}"
            if is_user_events(topic):
                key = f"badinput-{ident}".encode()
                value = user_event_bad_value(kind, ident)
            elif kind == STORE_REFUSED and table not in STORE_REFUSED_TABLES:
                skipped.append((topic, kind, "a consumer of this topic can hold a NUL"))
                break
            else:
                if template is None:
                    skipped.append((topic, kind, "no change event in the topic to copy"))
                    break
                key = orjson.dumps({"badinput": ident})
                mutated = cdc_bad_value(template, kind, ident)
                if mutated is None:
                    skipped.append((topic, kind, "needs the JSON converter with schemas"))
                    break
                value = mutated
            out.append(BadRecord(topic, kind, ident, key, value, expected_code(topic, kind)))
    return out, skipped
