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
    """Where the change sits in the source's log, as a number that orders one row's changes.

    PostgreSQL: the LSN. Changes of one row are serialised by row locks, so within a key the
    LSN follows the commit order (across keys it does not: overlapping transactions interleave
    in the WAL). A snapshot read has the snapshot's LSN, below every change streamed after it.
    MySQL: binlog file, position and row. Otherwise the source commit time.
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
