"""The ``dead_letter_queue`` table as the operator's ``cdc dlq`` commands see it (pure).

A row keeps a record that could not be decoded exactly as it was received: key and value
(``bytea``) and the record's own headers (``jsonb``: ``[[name, base64 or null], ...]``; the
runtime's ``__connect.errors.*`` provenance headers go to the DLQ topic only, never here).
``replay_record`` rebuilds that record for a replay to its original topic, with one header
added (``cdc.dlq.replayed-from``: the row's id) so a consumer can tell a replay from the
original. The rows themselves (``DeadLetterRow``, ``Selection``) are read by
``read_models.events``; replays and discards, the writes, are the writer's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from consumer_runtime import OutgoingRecord
from read_models.events import STATUSES, DeadLetterRow, Selection, parse_time

__all__ = [
    "REPLAYED_FROM_HEADER",
    "STATUSES",
    "DeadLetterRow",
    "Outcome",
    "Selection",
    "Skipped",
    "check_status",
    "parse_since",
    "replay_record",
]

#: Added to a replayed record: the id of the ``dead_letter_queue`` row it was replayed from.
REPLAYED_FROM_HEADER = "cdc.dlq.replayed-from"


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
