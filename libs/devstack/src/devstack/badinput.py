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
The records are built in ``_bad_records`` (pure); this module samples the templates, produces
the records and accounts for them, and exports the whole API.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

import orjson
from confluent_kafka import KafkaError, Producer, TopicPartition

from devstack._bad_records import (
    CDC_CODES,
    HEADER_ID,
    HEADER_KIND,
    KINDS,
    OVERSIZED_BYTES,
    PARSER_MAX_BYTES,
    STORE_REFUSED,
    STORE_REFUSED_TABLES,
    STORE_REJECTED,
    USER_EVENT_CODES,
    BadRecord,
    build_bad_records,
    cdc_bad_value,
    expected_code,
    is_user_events,
    user_event_bad_value,
)
from devstack._flow import op_of
from devstack._kafka_io import reader_consumer
from devstack._pipeline import CDC_TOPICS, FlowCheck
from devstack.simulator import USER_EVENTS_TOPIC

__all__ = [
    "ALL_TOPICS",
    "CDC_CODES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "HEADER_ID",
    "HEADER_KIND",
    "KINDS",
    "OVERSIZED_BYTES",
    "PARSER_MAX_BYTES",
    "STORE_REFUSED",
    "STORE_REFUSED_TABLES",
    "STORE_REJECTED",
    "USER_EVENT_CODES",
    "BadRecord",
    "Injected",
    "Injection",
    "build_bad_records",
    "cdc_bad_value",
    "consumers_of",
    "discount_injected",
    "expected_code",
    "inject_bad_records",
    "is_user_events",
    "produce_bad_records",
    "sample_change_events",
    "user_event_bad_value",
]

#: The producer's ``message.max.bytes`` here: room for an oversized record (``OVERSIZED_BYTES``).
DEFAULT_MAX_MESSAGE_BYTES: Final = 4 << 20

ALL_TOPICS: Final = (*CDC_TOPICS, USER_EVENTS_TOPIC)


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
