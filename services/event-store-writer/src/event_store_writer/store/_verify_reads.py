"""The reads behind ``cdc dev verify`` (``verify``): the store's events, ids and dead letters,
and the source database's rows.

Queries only; what they must equal, and how a row is rebuilt from its events, is ``verify``'s
(and ``_state``'s) business. The tables read are the caller's (the dev stack's shop tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg2.extensions
import sqlalchemy as sa
from read_models.events import HISTORY_ORDER, StoredEvent
from sqlalchemy.engine import Engine

__all__ = [
    "SourceConnection",
    "read_histories",
    "source_rows",
    "stored_event_kinds",
    "user_events_and_dead_letters",
]

#: A connection to the source database (``devstack.verify.VerifyContext.source``).
SourceConnection = psycopg2.extensions.connection

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # rebuilding a row reads neither time

_HISTORIES = f"""
SELECT table_name, key, kind, op, after, unchanged_columns, version FROM cdc_events
WHERE table_name = ANY(:tables) AND key IS NOT NULL
ORDER BY table_name, key, {HISTORY_ORDER}
"""  # noqa: S608 - only the constant order is interpolated


def read_histories(
    engine: Engine, tables: Sequence[str]
) -> tuple[dict[str, str], list[tuple[str, Any, StoredEvent]]]:
    """(each table's highest sweep, every keyed event of ``tables`` as ``(table, key, event)``
    with each row's events in version order)."""
    sql = sa.text(_HISTORIES)
    sweeps_sql = sa.text(
        "SELECT table_name, max(sweep_version) FROM cdc_sweeps "
        "WHERE table_name = ANY(:tables) GROUP BY table_name"
    )
    events: list[tuple[str, Any, StoredEvent]] = []
    with engine.connect() as conn:
        sweeps = {str(t): str(v) for t, v in conn.execute(sweeps_sql, {"tables": list(tables)})}
        for table, key, kind, op, after, unchanged, version in conn.execute(
            sql, {"tables": list(tables)}
        ):
            events.append(
                (
                    table,
                    key,
                    StoredEvent(
                        event_id="",
                        kind=kind,
                        op=op,
                        key=key,
                        before=None,
                        after=after,
                        unchanged_columns=tuple(unchanged or ()),
                        source_ts=None,
                        event_time=_EPOCH,
                        position=None,
                        lsn=None,
                        tx_id=None,
                        snapshot=False,
                        topic="",
                        kafka_partition=0,
                        kafka_offset=0,
                        version=version,
                    ),
                )
            )
    return sweeps, events


def source_rows(conn: SourceConnection, tables: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """Every row of ``tables`` in the source database, as ``(table, {column: value})``."""
    out = []
    with conn.cursor() as cur:
        for table in tables:
            cur.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            names = [d[0] for d in cur.description or ()]
            for values in cur.fetchall():
                out.append((table, dict(zip(names, values, strict=True))))
    conn.rollback()
    return out


def stored_event_kinds(engine: Engine, tables: Sequence[str]) -> list[tuple[str, str]]:
    """``(event_id, kind)`` of every event of ``tables`` as stored, with repeats if any."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT event_id, kind FROM cdc_events WHERE table_name = ANY(:t)"),
            {"t": list(tables)},
        ).all()
    return [(i, k) for i, k in rows]


def user_events_and_dead_letters(engine: Engine) -> tuple[list[str], list[tuple[str, int, int]]]:
    """(the ids in ``user_events``, the ``(topic, partition, offset)`` of every dead letter)."""
    with engine.connect() as conn:
        users = list(conn.execute(sa.text("SELECT event_id FROM user_events")).scalars())
        dlq = [
            (t, p, o)
            for t, p, o in conn.execute(
                sa.text("SELECT topic, kafka_partition, kafka_offset FROM dead_letter_queue")
            )
        ]
    return users, dlq
