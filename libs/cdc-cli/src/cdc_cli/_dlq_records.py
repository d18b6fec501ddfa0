"""Dead letters of a service's DLQ topic as ``cdc dlq`` sees them (pure).

The consumer runtime writes every dead letter of service S to its DLQ topic (``<S>.dlq``) with
the key and value unchanged, the record's own headers first and the provenance headers after
them (``consumer_runtime.dlq_headers``: ``__connect.errors.*`` in the Kafka Connect convention,
``__cdc.errors.service`` / ``.code``, and ``__cdc.errors.truncated`` / ``.original.*`` when the
record had to be cut to fit). This module splits them apart again, names each dead letter by a
stable id (``<dlq partition>:<dlq offset>``), and builds the record a replay produces: the
original key, value and headers plus the ``__cdc.replay.*`` headers that carry the original
position and which dead letter (and which replay) it came from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from consumer_runtime import (
    HEADER_CLASS,
    HEADER_CODE,
    HEADER_MESSAGE,
    HEADER_OFFSET,
    HEADER_ORIGINAL_SHA256,
    HEADER_ORIGINAL_SIZE,
    HEADER_PARTITION,
    HEADER_SERVICE,
    HEADER_TOPIC,
    HEADER_TRUNCATED,
    Message,
    OutgoingRecord,
)
from consumer_runtime.dlq_text import describe_bytes

Headers = tuple[tuple[str, bytes | None], ...]

#: The provenance headers the runtime appends, in its order (``dlq_headers``).
PROVENANCE = (
    HEADER_TOPIC,
    HEADER_PARTITION,
    HEADER_OFFSET,
    HEADER_CLASS,
    HEADER_MESSAGE,
    HEADER_SERVICE,
    HEADER_CODE,
)
#: Appended after them when key and value were cut to fit a Kafka record (``dlq_record``).
TRUNCATION = (HEADER_TRUNCATED, HEADER_ORIGINAL_SIZE, HEADER_ORIGINAL_SHA256)

#: Added to a replayed record: where the record was first read (topic, partition, offset), so a
#: sink can order it by its source position; kept from an earlier replay when it has them.
REPLAY_TOPIC = "__cdc.replay.topic"
REPLAY_PARTITION = "__cdc.replay.partition"
REPLAY_OFFSET = "__cdc.replay.offset"
#: Added to a replayed record: the dead letter it came from, ``<dlq topic>/<id>``.
REPLAY_FROM = "__cdc.replay.from"
#: Added to a replayed record: the claim of the replay that produced it (see ``_dlq_status``).
REPLAY_CLAIM = "__cdc.replay.claim"
POSITION = (REPLAY_TOPIC, REPLAY_PARTITION, REPLAY_OFFSET)

_ID = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


@dataclass(frozen=True, order=True, slots=True)
class DlqId:
    """A dead letter's id: its partition and offset in the DLQ topic (stable: Kafka never
    reuses an offset), written ``<partition>:<offset>``."""

    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> DlqId:
        match = _ID.match(text)
        if match is None:
            raise ValueError(
                f"{text!r} is not a dead letter id: ids are <partition>:<offset> of the DLQ "
                "topic, e.g. 0:17 (see `cdc dlq list`)"
            )
        return cls(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True, slots=True)
class Provenance:
    """What the runtime recorded about a dead letter (its provenance headers, decoded)."""

    topic: str | None
    partition: int | None
    offset: int | None
    error_type: str
    error_code: str
    error_message: str
    service: str | None
    truncated: bool = False
    original_size: str | None = None  # "<key bytes>,<value bytes>" of the original
    original_sha256: str | None = None  # of key + value of the original


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One record of a DLQ topic: the original record and its provenance, split apart."""

    id: DlqId
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    #: The record's own headers, in order, as the runtime forwarded them.
    headers: Headers
    #: The provenance headers as received (names and raw values).
    provenance_headers: Headers
    provenance: Provenance

    @property
    def created_at(self) -> datetime:
        """When the runtime dead-lettered it (the DLQ record's timestamp)."""
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    @property
    def source(self) -> tuple[str, int, int] | None:
        """(topic, partition, offset) where the record was read, if the headers say."""
        p = self.provenance
        if p.topic is None or p.partition is None or p.offset is None:
            return None
        return (p.topic, p.partition, p.offset)

    @property
    def position(self) -> str:
        source = self.source
        return "?" if source is None else f"{source[0]}[{source[1]}]@{source[2]}"

    def not_replayable(self) -> str | None:
        """Why this dead letter cannot be replayed, or None if it can."""
        if self.source is None:
            return (
                "not replayable: no __connect.errors.topic/partition/offset headers (not "
                "written by the consumer runtime)"
            )
        if self.provenance.truncated:
            return (
                "not replayable: the DLQ holds only the first bytes of this record "
                f"(original sizes {self.provenance.original_size}); the whole record is in "
                f"{self.position} until the topic's retention: re-read it with `cdc replay`"
            )
        return None

    def summary(self) -> dict[str, Any]:
        """Everything but the payload (sizes only): one entry of ``cdc dlq list --json``."""
        p = self.provenance
        return {
            "id": str(self.id),
            "dlq_partition": self.id.partition,
            "dlq_offset": self.id.offset,
            "created_at": self.created_at.isoformat(),
            "topic": p.topic,
            "partition": p.partition,
            "offset": p.offset,
            "error_type": p.error_type,
            "error_code": p.error_code,
            "error_message": p.error_message,
            "service": p.service,
            "truncated": p.truncated,
            "key_size": None if self.key is None else len(self.key),
            "value_size": None if self.value is None else len(self.value),
            "header_count": len(self.headers),
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole record, bytes losslessly (base64, plus the text when UTF-8)."""
        out = self.summary()
        out["original_size"] = self.provenance.original_size
        out["original_sha256"] = self.provenance.original_sha256
        out["key"] = describe_bytes(self.key)
        out["value"] = describe_bytes(self.value)
        out["headers"] = [{"name": name, **describe_bytes(value)} for name, value in self.headers]
        out["provenance_headers"] = [
            {"name": name, **describe_bytes(value)} for name, value in self.provenance_headers
        ]
        return out


def split_headers(headers: Headers) -> tuple[Headers, Headers]:
    """(the record's own headers, the provenance headers) of a DLQ record.

    The runtime appends its provenance block (``PROVENANCE``, then ``TRUNCATION`` when cut)
    after the record's own headers, so that trailing block is split off exactly, and a record
    whose own headers happen to use the same names keeps them. A record that does not end with
    the block (not written by this runtime) loses every header with a provenance name.
    """
    names = tuple(name for name, _ in headers)
    for block in (PROVENANCE + TRUNCATION, PROVENANCE):
        if names[-len(block) :] == block:
            return headers[: -len(block)], headers[-len(block) :]
    known = set(PROVENANCE + TRUNCATION)
    return (
        tuple(h for h in headers if h[0] not in known),
        tuple(h for h in headers if h[0] in known),
    )


def _text(headers: Headers, name: str) -> str | None:
    values = [v for k, v in headers if k == name]
    if not values or values[-1] is None:
        return None
    return values[-1].decode("utf-8", errors="replace")


def _int(headers: Headers, name: str) -> int | None:
    text = _text(headers, name)
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def provenance_of(headers: Headers) -> Provenance:
    return Provenance(
        topic=_text(headers, HEADER_TOPIC) or None,
        partition=_int(headers, HEADER_PARTITION),
        offset=_int(headers, HEADER_OFFSET),
        error_type=_text(headers, HEADER_CLASS) or "",
        error_code=_text(headers, HEADER_CODE) or "unknown",
        error_message=_text(headers, HEADER_MESSAGE) or "",
        service=_text(headers, HEADER_SERVICE),
        truncated=(_text(headers, HEADER_TRUNCATED) or "").lower() == "true",
        original_size=_text(headers, HEADER_ORIGINAL_SIZE),
        original_sha256=_text(headers, HEADER_ORIGINAL_SHA256),
    )


def dead_letter_of(message: Message) -> DeadLetterRecord:
    """The dead letter a DLQ topic's record holds."""
    own, provenance = split_headers(tuple(message.headers() or ()))
    return DeadLetterRecord(
        id=DlqId(message.partition() or 0, message.offset() or 0),
        timestamp_ms=message.timestamp()[1],
        key=message.key(),
        value=message.value(),
        headers=own,
        provenance_headers=provenance,
        provenance=provenance_of(provenance),
    )


def replay_reference(dlq_topic: str, dead_id: DlqId) -> str:
    """The value of ``__cdc.replay.from``: ``<dlq topic>/<id>``."""
    return f"{dlq_topic}/{dead_id}"


def replay_record(dead: DeadLetterRecord, dlq_topic: str, claim: str) -> OutgoingRecord:
    """The record a replay produces to the original topic.

    Key, value and the record's own headers as the runtime forwarded them, then the original
    position (``__cdc.replay.topic/partition/offset``: kept as they are when the dead letter was
    itself a replayed record, so they always name where the record was first read), then
    ``__cdc.replay.from`` and ``__cdc.replay.claim`` (replacing those of an earlier replay).
    """
    source = dead.source
    if source is None:
        raise ValueError(f"dead letter {dead.id} has no source position: it cannot be replayed")
    headers = [(k, v) for k, v in dead.headers if k not in (REPLAY_FROM, REPLAY_CLAIM)]
    if not set(POSITION) <= {k for k, _ in headers}:
        headers = [(k, v) for k, v in headers if k not in POSITION]
        topic, partition, offset = source
        headers += [
            (REPLAY_TOPIC, topic.encode()),
            (REPLAY_PARTITION, str(partition).encode()),
            (REPLAY_OFFSET, str(offset).encode()),
        ]
    headers += [
        (REPLAY_FROM, replay_reference(dlq_topic, dead.id).encode()),
        (REPLAY_CLAIM, claim.encode()),
    ]
    # A header without a value (null) stays null: ``OutgoingRecord`` is annotated ``bytes``
    # only, but the publisher hands headers to the Kafka client, which keeps a null as null.
    return OutgoingRecord(
        key=dead.key, value=dead.value, headers=cast(tuple[tuple[str, bytes], ...], tuple(headers))
    )


def header_value(headers: Sequence[tuple[str, bytes | None]], name: str) -> bytes | None:
    """The last value of header ``name`` (None: absent or null)."""
    values = [v for k, v in headers if k == name]
    return values[-1] if values else None
