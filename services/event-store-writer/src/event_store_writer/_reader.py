"""The read side of the event store (the ``cdc history`` / ``cdc state`` commands).

Queries only: a row's history in source order, and what the store knows of a table's key. The
folding into a state is pure (``_state.rebuild_state``). Database errors are wrapped into
``StoreQueryError`` with a message an operator can act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sink_kit.postgres import make_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from event_store_writer._state import StoredEvent, rebuild_state
from event_store_writer.domain import key_hash, key_json
from event_store_writer.errors import StoreQueryError

# History in source order. A tombstone shares its delete's position and sorts after it; a
# truncate of the table (op t, no key) ends every row's life, so it is part of each history.
_COLUMNS = """event_id, kind, op, key, before, after, unchanged_columns, source_ts, event_time,
       position, lsn, tx_id, snapshot, topic, kafka_partition, kafka_offset"""
_HISTORY = f"""
SELECT {_COLUMNS} FROM cdc_events
WHERE key_hash = :key_hash AND table_name = :table AND key = CAST(:key AS jsonb)
  AND (CAST(:schema AS text) IS NULL OR schema_name = :schema OR kind = 'tombstone')
  AND (CAST(:at AS timestamptz) IS NULL OR event_time <= CAST(:at AS timestamptz))
UNION ALL
SELECT {_COLUMNS} FROM cdc_events
WHERE :with_truncates AND table_name = :table AND op = 't'
  AND (CAST(:schema AS text) IS NULL OR schema_name = :schema)
  AND (CAST(:at AS timestamptz) IS NULL OR event_time <= CAST(:at AS timestamptz))
ORDER BY position NULLS LAST, kind, kafka_offset
"""  # noqa: S608 - only constant column names are interpolated


def split_table(name: str) -> tuple[str | None, str]:
    """``public.products`` -> (``public``, ``products``); ``products`` -> (None, ``products``)."""
    schema, dot, table = name.rpartition(".")
    return (schema or None, table) if dot else (None, name)


@contextmanager
def _errors(url_hint: str) -> Iterator[None]:
    try:
        yield
    except sa_exc.OperationalError as exc:
        raise StoreQueryError(
            f"cannot reach the event store ({str(exc.orig).strip().splitlines()[0]}); "
            f"check --database-url / DATABASE_URL ({url_hint})"
        ) from exc
    except sa_exc.ProgrammingError as exc:
        raise StoreQueryError(
            f"the event store is not there ({str(exc.orig).strip().splitlines()[0]}); "
            "has the writer run its migrations against this database and schema?"
        ) from exc


class StoreReader:
    """Reads a row's history from the store at ``url``."""

    def __init__(self, url: str) -> None:
        self._engine: Engine = make_engine(url, pool_size=1, max_overflow=0)
        self._hint = sa.make_url(url).render_as_string(hide_password=True)

    def close(self) -> None:
        self._engine.dispose()

    def key_columns(self, table: str) -> list[str]:
        """Key columns of ``table`` as the stored events show them (empty if unknown)."""
        schema, name = split_table(table)
        with _errors(self._hint), self._engine.connect() as conn:
            key = conn.execute(
                sa.text(
                    "SELECT key FROM cdc_events WHERE table_name = :t AND key IS NOT NULL "
                    "AND (:s IS NULL OR schema_name = :s) LIMIT 1"
                ),
                {"t": name, "s": schema},
            ).scalar()
        return list(key) if isinstance(key, dict) else []

    def history(
        self,
        table: str,
        key: dict[str, Any],
        *,
        at: datetime | None = None,
        truncates: bool = False,
    ) -> list[StoredEvent]:
        schema, name = split_table(table)
        with _errors(self._hint), self._engine.connect() as conn:
            return _history(conn, name, schema, key, at, truncates)

    def state(
        self, table: str, key: dict[str, Any], at: datetime
    ) -> tuple[dict[str, Any] | None, int]:
        """The row at ``at`` (``None``: absent or deleted) and how many events made it."""
        events = self.history(table, key, at=at, truncates=True)
        return rebuild_state(events), len(events)


def _history(
    conn: Connection,
    table: str,
    schema: str | None,
    key: dict[str, Any],
    at: datetime | None,
    truncates: bool,
) -> list[StoredEvent]:
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
        )
        for r in rows
    ]
