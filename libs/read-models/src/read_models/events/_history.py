"""The reads behind ``cdc history`` and ``cdc state``: a row's history and its table's sweep.

A row's history is read in source order (``_state.HISTORY_ORDER``: by version), with the
table's truncates when its state is rebuilt; the sweep its state at a time applies is the
table's highest one whose marking read happened by then. Each read runs on a connection the
caller holds (``_reader.EventStoreReader``, which also turns database errors into
``UnavailableError``); folding the events into a state is pure (``_state.rebuild_state``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from read_models.events._keys import key_hash, key_json
from read_models.events._state import HISTORY_ORDER, StoredEvent

__all__ = ["read_history", "read_sweep"]

# History in source order. A tombstone shares its delete's version and sorts after it; a
# truncate of the table (op t, no key) ends every row's life, so it is part of each history.
_COLUMNS = """event_id, kind, op, key, before, after, unchanged_columns, source_ts, event_time,
       position, lsn, tx_id, snapshot, topic, kafka_partition, kafka_offset, version"""
_HISTORY = f"""
SELECT {_COLUMNS} FROM (
  SELECT {_COLUMNS} FROM cdc_events
  WHERE key_hash = :key_hash AND table_name = :table AND key = CAST(:key AS jsonb)
    AND (CAST(:schema AS text) IS NULL OR schema_name = :schema OR kind = 'tombstone')
    AND (CAST(:at AS timestamptz) IS NULL OR event_time <= CAST(:at AS timestamptz))
  UNION ALL
  SELECT {_COLUMNS} FROM cdc_events
  WHERE :with_truncates AND table_name = :table AND op = 't'
    AND (CAST(:schema AS text) IS NULL OR schema_name = :schema)
    AND (CAST(:at AS timestamptz) IS NULL OR event_time <= CAST(:at AS timestamptz))
) AS history
ORDER BY {HISTORY_ORDER}
"""  # noqa: S608 - only constant column names are interpolated

# The sweep a row's state at a time applies: the table's highest one whose snapshot read (the
# last of the table) happened by then, by its source time like the events themselves. The
# table's name decides, as it does for a history without a schema (the key hash has no schema).
_SWEEP = """
SELECT max(sweep_version) FROM cdc_sweeps
WHERE table_name = :table
  AND (CAST(:at AS timestamptz) IS NULL OR event_time <= CAST(:at AS timestamptz))
"""


def read_history(
    conn: Connection,
    table: str,
    schema: str | None,
    key: dict[str, Any],
    at: datetime | None,
    truncates: bool,
) -> list[StoredEvent]:
    """The events of ``key`` in ``table`` (and ``schema``, if given) in source order, those
    with an ``event_time`` at or before ``at`` if given; with the table's truncates if
    ``truncates``."""
    rows = conn.execute(
        sa.text(_HISTORY),
        {
            "table": table,
            "schema": schema,
            "key": orjson.dumps(key).decode(),
            "key_hash": key_hash(table, key_json(key)),
            "at": at,
            "with_truncates": truncates,
        },
    )
    return [
        StoredEvent(
            event_id=r[0],
            kind=r[1],
            op=r[2],
            key=r[3],
            before=r[4],
            after=r[5],
            unchanged_columns=tuple(r[6] or ()),
            source_ts=r[7],
            event_time=r[8],
            position=None if r[9] is None else int(r[9]),
            lsn=r[10],
            tx_id=r[11],
            snapshot=bool(r[12]),
            topic=r[13],
            kafka_partition=r[14],
            kafka_offset=r[15],
            version=r[16],
        )
        for r in rows
    ]


def read_sweep(conn: Connection, table: str, at: datetime | None) -> str | None:
    """The sweep version the state of a row of ``table`` at ``at`` applies (None: none)."""
    sweep = conn.execute(sa.text(_SWEEP), {"table": table, "at": at}).scalar()
    return None if sweep is None else str(sweep)
