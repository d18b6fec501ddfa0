"""The ``dead_letter_queue`` table's rows as the readers see them (pure): ``cdc dlq`` and the
query API's dead-letter summary.

A row keeps a record that could not be decoded exactly as it was received: key and value
(``bytea``) and the record's own headers (``jsonb``: ``[[name, base64 or null], ...]``; the
runtime's ``__connect.errors.*`` provenance headers go to the DLQ topic only, never here).
Bytes are shown as ``consumer_runtime.dlq_text`` shows every dead letter.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consumer_runtime.dlq_text import describe_bytes

__all__ = ["STATUSES", "DeadLetterRow", "Headers", "Selection", "decode_headers"]

STATUSES = ("new", "replayed", "discarded")

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


def decode_headers(raw: Any) -> Headers:
    """The ``headers`` column (``[[name, base64 or null], ...]`` or NULL) as bytes."""
    if not raw:
        return ()
    return tuple(
        (str(name), None if value is None else base64.b64decode(value)) for name, value in raw
    )
