"""The ``dead_letter_queue`` table as the operator's ``cdc dlq`` commands see it (pure).

A row keeps a record that could not be decoded exactly as it was received: key and value
(``bytea``) and the record's own headers (``jsonb``: ``[[name, base64 or null], ...]``; the
runtime's ``__connect.errors.*`` provenance headers go to the DLQ topic only, never here).
``replay_record`` rebuilds that record for a replay to its original topic, with one header
added (``cdc.dlq.replayed-from``: the row's id) so a consumer can tell a replay from the
original. Bytes are shown as ``consumer_runtime.dlq_text`` shows every dead letter.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from consumer_runtime import OutgoingRecord
from consumer_runtime.dlq_text import describe_bytes

from event_store_writer._state import parse_time

STATUSES = ("new", "replayed", "discarded")
#: Added to a replayed record: the id of the ``dead_letter_queue`` row it was replayed from.
REPLAYED_FROM_HEADER = "cdc.dlq.replayed-from"

Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """One row of ``dead_letter_queue``; ``key``/``value``/``headers`` as received."""

    id: int
    created_at: datetime
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    error_type: str
    error_code: str
    error_message: str
    retry_count: int
    status: str
    status_changed_at: datetime | None = None
    status_changed_by: str | None = None
    status_reason: str | None = None

    @property
    def position(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def summary(self) -> dict[str, Any]:
        """Everything but the payload (sizes only): one entry of ``cdc dlq list --json``."""
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "error_type": self.error_type,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "status": self.status,
            "retry_count": self.retry_count,
            "status_changed_at": (
                None if self.status_changed_at is None else self.status_changed_at.isoformat()
            ),
            "status_changed_by": self.status_changed_by,
            "status_reason": self.status_reason,
            "key_size": None if self.key is None else len(self.key),
            "value_size": None if self.value is None else len(self.value),
            "header_count": len(self.headers),
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole row, bytes losslessly (base64, plus the text when UTF-8)."""
        out = self.summary()
        out["key"] = describe_bytes(self.key)
        out["value"] = describe_bytes(self.value)
        out["headers"] = [{"name": name, **describe_bytes(value)} for name, value in self.headers]
        return out


@dataclass(frozen=True, slots=True)
class Selection:
    """Which rows a command works on: ids (if any) narrowed by the filters."""

    ids: tuple[int, ...] = ()
    status: str | None = None
    topic: str | None = None
    code: str | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A selected row a command left alone, and why."""

    id: int
    status: str | None  # None: no such row
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "reason": self.reason}


@dataclass(slots=True)
class Outcome:
    """What a replay or a discard did (or, dry run, would do)."""

    execute: bool
    done: list[DeadLetterRow] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: The row whose record could not be produced, and the error; the replay stopped there.
    failed: DeadLetterRow | None = None
    error: str | None = None
    #: Stopped by Ctrl-C (``failed`` is the row whose acknowledgement was being waited for).
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """``done`` lists the rows changed (``execute``) or that would be (dry run)."""
        return {
            "execute": self.execute,
            "done": [r.summary() for r in self.done],
            "skipped": [s.to_dict() for s in self.skipped],
            "failed": None if self.failed is None else self.failed.summary(),
            "error": self.error,
            "interrupted": self.interrupted,
        }


# -- headers and the replayed record ---------------------------------------------------------


def decode_headers(raw: Any) -> Headers:
    """The ``headers`` column (``[[name, base64 or null], ...]`` or NULL) as bytes."""
    if not raw:
        return ()
    return tuple(
        (str(name), None if value is None else base64.b64decode(value)) for name, value in raw
    )


def replay_record(row: DeadLetterRow) -> OutgoingRecord:
    """The original record of ``row`` plus ``cdc.dlq.replayed-from: <id>``.

    Key, value and headers are the bytes received, in order; a ``cdc.dlq.replayed-from`` header
    of an earlier replay is replaced, so a record replayed twice names the row it came from last.
    """
    headers = [(k, v) for k, v in row.headers if k != REPLAYED_FROM_HEADER]
    headers.append((REPLAYED_FROM_HEADER, str(row.id).encode()))
    # A header without a value (null) stays null: ``OutgoingRecord`` is annotated ``bytes``
    # only, but the publisher hands headers to the Kafka client, which keeps a null as null.
    return OutgoingRecord(
        key=row.key, value=row.value, headers=cast(tuple[tuple[str, bytes], ...], tuple(headers))
    )


# -- command-line values ---------------------------------------------------------------------

_AGO = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``, ``12h``, ``7d`` (before ``now``) or an ISO-8601 time (UTC without an offset)."""
    ago = _AGO.match(text.lower())
    if ago is not None:
        return now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        return parse_time(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (30m, 12h, 7d) nor an ISO-8601 time"
        ) from None


def check_status(status: str) -> str | None:
    """``--status``: one of the statuses, or ``all`` (None)."""
    value = status.strip().lower()
    if value == "all":
        return None
    if value not in STATUSES:
        raise ValueError(f"{status!r} is not one of {', '.join(STATUSES)}, all")
    return value
