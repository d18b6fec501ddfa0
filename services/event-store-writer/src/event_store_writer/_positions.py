"""Where a change sits in its source's log, and the ids of tombstones (pure).

A tombstone has no position of its own: its id derives from the delete before it (so a Debezium
re-emit of the pair is absorbed as a whole) or, with no delete known, from its Kafka position.
"""

from __future__ import annotations

import hashlib

from cdc_events import ChangeView

_SEP = "\x1f"


def _binlog_position(file: str, pos: int, row: int) -> int:
    """MySQL binlog position as one sortable integer: file sequence, offset, row in event."""
    digits = "".join(ch for ch in file.rsplit(".", 1)[-1] if ch.isdigit())
    return int(digits or 0) * 10**16 + pos * 10**6 + row


def source_position(event: ChangeView) -> int | None:
    """Where the change sits in the source's log, as a number (``cdc_events.position``).

    PostgreSQL: the LSN. MySQL: binlog file, position and row. Otherwise the source commit
    time. Kept for reference and for the rows stored before versions: it does not order one
    row's changes across snapshots (the first transaction streamed after a snapshot may hold
    LSNs below the snapshot's read of the row; a new snapshot's reads outrank what was streamed
    before it), the change's version (``cdc_events.version``) does.
    """
    if event.lsn is not None:
        return event.lsn
    if event.binlog is not None:
        return _binlog_position(event.binlog.file, event.binlog.pos, event.binlog.row)
    return event.source_ts_ms


def tombstone_id_after(delete_event_id: str) -> str:
    """The id of the tombstone following the delete ``delete_event_id``."""
    text = _SEP.join(("v1", "tombstone", delete_event_id))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def orphan_tombstone_id(topic: str, partition: int, offset: int) -> str:
    """Id of a tombstone with no delete before it in its partition (its Kafka position)."""
    text = _SEP.join(("v1", "tombstone-at", topic, str(partition), str(offset)))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
