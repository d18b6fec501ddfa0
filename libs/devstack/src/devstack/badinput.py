"""Bad input: malformed records injected into the topics of a running stack.

Every consumer must dead-letter what it cannot decode and keep its partitions flowing. This
module produces, into each CDC topic and ``user-events``, records that break in the ways real
streams break:

* ``not_json``: the record cut in half (a torn write) -> ``not_json``;
* ``bad_utf8``: invalid UTF-8 bytes inside a string -> ``bad_utf8``;
* ``unknown_op``: ``"op": "x"`` -> ``unknown_op`` (user event: ``"event_type": "teleport"``
  -> ``invalid_event``);
* ``bad_decimal``: a Connect ``Decimal`` that is not base64 -> ``bad_decimal`` (a table without
  a decimal column gets one; user event: a purchase ``amount`` of ``"12.3.4"`` ->
  ``invalid_event``);
* ``oversized``: a text column (user event: ``metadata``) padded past the parser's 1 MiB limit
  -> ``too_large``;
* ``missing_field``: a required column without a default removed from ``after`` (user event:
  no ``user_id``) -> ``missing_field``;
* ``wrong_type``: a string in an integer column -> ``type_mismatch`` (user event: a number as
  ``timestamp`` -> ``invalid_event``);
* ``store_refused``: a record that parses but that every store reading its topic refuses: a NUL
  character in each text column (PostgreSQL's text and jsonb cannot hold one) -> the runtime
  isolates it and dead-letters it with the store's reason, ``store_rejected``. Only where every
  consumer of the topic refuses it: ``user-events`` (a NUL in ``user_id``) and ``customers``
  (a new customer id far above the simulator's, at a source position newer than any: a consumer
  that accepted it would show an extra row, and the checks would say so). Other topics skip it.

The codes are those ``cdc_events.parse_record`` (CDC topics) and
``cdc_events.parse_user_activity`` (``user-events``) raise; a unit test runs every kind through
the parser to keep this table true. CDC records are built from a real change event read from
the topic (so they carry the connector's own schema) and need the JSON converter with schemas:
without a schema a bad decimal or a wrong type is not detectable and those kinds are skipped.

Each record has a distinctive key (``{"badinput": "<id>"}`` on CDC topics, ``badinput-<id>``
on ``user-events``) and the headers ``cdc.injected`` (the kind) and ``cdc.injected.id``; the
dead-letter queues keep both (the runtime forwards the original headers). Oversized records
are above the parser's 1 MiB limit and below the broker's maximum message size, so the broker
accepts them; the producer's own limit is raised accordingly (``max_message_bytes``).

``cdc dev inject-bad`` runs :func:`inject_bad_records` against the stack ``make up`` started.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from confluent_kafka import KafkaError, Producer, TopicPartition

from devstack._flow import op_of
from devstack._kafka_io import reader_consumer
from devstack._pipeline import CDC_TOPICS, FlowCheck
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
#: The CDC tables where every consumer refuses a ``store_refused`` record (see the docstring).
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
DEFAULT_MAX_MESSAGE_BYTES: Final = 4 << 20

_DECIMAL: Final = "org.apache.kafka.connect.data.Decimal"
_INT_TYPES: Final = ("int8", "int16", "int32", "int64")
_UTF8_MARK: Final = "@@bad-utf8@@"
# A lone continuation byte and a truncated two-byte sequence: invalid UTF-8 in any decoder.
_BAD_UTF8: Final = b"caf\xc3\x28\x80"

ALL_TOPICS: Final = (*CDC_TOPICS, USER_EVENTS_TOPIC)


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


@dataclass(frozen=True)
class Injected:
    """Where a bad record landed and what every consumer must say about it."""

    topic: str
    partition: int
    offset: int
    kind: str
    expected_code: str
    ident: str
    key: bytes
    size: int
    # SHA-256 of key + value: what a dead-letter record cut to fit names its original by.
    sha256: str
    # The op the devstack flow monitor counts it under (to discount it from the flow check).
    flow_op: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["key"] = self.key.decode(errors="replace")
        return out


@dataclass
class Injection:
    """The result of one injection: what landed where, and what could not be built."""

    records: list[Injected] = field(default_factory=list)
    # (topic, kind, reason): kinds a topic's records cannot express (e.g. no schema)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": [r.to_dict() for r in self.records],
            "skipped": [list(s) for s in self.skipped],
        }


# -- building (pure) ----------------------------------------------------------------------------


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


# -- producing (I/O) ----------------------------------------------------------------------------


def sample_change_events(
    bootstrap: str, topics: Iterable[str], timeout: float = 30.0
) -> dict[str, bytes]:
    """One real change event (with an ``after`` row) per topic, read from the beginning."""
    wanted = [t for t in topics if not is_user_events(t)]
    found: dict[str, bytes] = {}
    if not wanted:
        return found
    consumer = reader_consumer(bootstrap, "devstack-badinput-sampler")
    deadline = time.monotonic() + timeout
    try:
        metadata = consumer.list_topics(timeout=10)
        assignment = [
            TopicPartition(t, p, 0)
            for t in wanted
            if t in metadata.topics
            for p in metadata.topics[t].partitions
        ]
        if not assignment:
            return found
        consumer.assign(assignment)
        while len(found) < len(wanted) and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                topic = msg.topic() or ""
                value = msg.value()
                if msg.error() or topic in found or value is None:
                    continue
                if _is_change_with_after(value):
                    found[topic] = value
    finally:
        consumer.close()
    return found


def _is_change_with_after(value: bytes) -> bool:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(doc, dict):
        return False
    payload = doc.get("payload", doc)
    return (
        isinstance(payload, dict)
        and payload.get("op") in ("c", "u", "r")
        and isinstance(payload.get("after"), dict)
        and isinstance(payload.get("source"), dict)
    )


def produce_bad_records(
    bootstrap: str,
    records: Sequence[BadRecord],
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    timeout: float = 60.0,
) -> list[Injected]:
    """Produce ``records`` and return where each landed, once the broker acknowledged all."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.max.bytes": max_message_bytes,
            "partitioner": "murmur2_random",
        }
    )
    landed: dict[int, tuple[int, int]] = {}
    errors: list[str] = []

    def on_delivery_for(index: int) -> Callable[[KafkaError | None, Any], None]:
        def on_delivery(err: KafkaError | None, msg: Any) -> None:
            if err is not None:
                errors.append(f"{records[index].ident}: {err}")
            else:
                landed[index] = (int(msg.partition()), int(msg.offset()))

        return on_delivery

    for index, rec in enumerate(records):
        while True:
            try:
                producer.produce(
                    rec.topic,
                    key=rec.key,
                    value=rec.value,
                    headers=rec.headers,
                    on_delivery=on_delivery_for(index),
                )
                break
            except BufferError:
                producer.poll(0.1)
    remaining = producer.flush(timeout)
    if remaining or errors or len(landed) != len(records):
        raise RuntimeError(
            f"bad records not acknowledged: {remaining} pending, errors: {errors[:3]}"
        )
    return [
        Injected(
            topic=rec.topic,
            partition=landed[i][0],
            offset=landed[i][1],
            kind=rec.kind,
            expected_code=rec.expected_code,
            ident=rec.ident,
            key=rec.key,
            size=len(rec.value),
            sha256=hashlib.sha256(rec.key + rec.value).hexdigest(),
            flow_op=op_of(rec.value),
        )
        for i, rec in enumerate(records)
    ]


def inject_bad_records(
    bootstrap: str,
    *,
    topics: Sequence[str] = ALL_TOPICS,
    kinds: Sequence[str] = KINDS,
    count_per_kind: int = 1,
    run_id: str | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    sample_timeout: float = 30.0,
) -> Injection:
    """Inject ``count_per_kind`` records of every kind into every topic of a running stack.

    CDC records are mutated copies of a real change event of their topic (read from the
    beginning), so the topics must hold at least one (the snapshot does).
    """
    if count_per_kind < 1:
        raise ValueError("count_per_kind must be at least 1")
    run_id = run_id or uuid.uuid4().hex[:8]
    samples = sample_change_events(bootstrap, topics, sample_timeout)
    result = Injection()
    pending: list[BadRecord] = []
    for topic in topics:
        records, skipped = build_bad_records(
            topic,
            samples.get(topic),
            kinds=kinds,
            count_per_kind=count_per_kind,
            run_id=run_id,
        )
        pending.extend(records)
        result.skipped.extend(skipped)
    result.records = produce_bad_records(bootstrap, pending, max_message_bytes=max_message_bytes)
    return result


# -- accounting ---------------------------------------------------------------------------------


def discount_injected(checks: Sequence[FlowCheck], injected: Iterable[Injected]) -> list[FlowCheck]:
    """The flow check without the injected records (the flow monitor counts every record of
    a topic, and a bad record is not a change anyone committed)."""
    extra: Counter[tuple[str, str]] = Counter()
    for rec in injected:
        op = "event" if is_user_events(rec.topic) else rec.flow_op
        extra[(rec.topic, op)] += 1
    out = []
    for check in checks:
        minus = extra.pop((check.topic, check.op), 0)
        if minus == 0:
            out.append(check)
        elif check.expected == 0 and check.actual == minus:
            continue  # only injected records under this op: not part of the flow
        else:
            out.append(replace(check, actual=check.actual - minus))
    return out


def consumers_of(topic: str) -> tuple[str, ...]:
    """The services of the embedded stack that read ``topic`` (their default subscriptions)."""
    table = topic.rsplit(".", 1)[-1]
    readers = ["event-store-writer"]
    if is_user_events(topic) or table in ("customers", "products", "orders", "order_items"):
        readers.append("stats-aggregator")
    if table == "products":
        readers.append("search-indexer")
    if table in ("orders", "order_items"):
        readers.append("analytics-flusher")
    return tuple(readers)
