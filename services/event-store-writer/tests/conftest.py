"""Fixtures shared by the event-store writer's tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg2.extensions
import pytest
import sqlalchemy as sa
from cdc_events import ParseError
from consumer_runtime import InMemoryMessage
from devstack import SHOP_TABLES, ManagedProcess, read_topic
from devstack.pytest_plugin import SinkSchema
from event_store_writer import (
    ChangeRow,
    EventDecoder,
    EventStoreSink,
    StoredEvent,
    StoreMetrics,
    normalise_row,
    rebuild_state,
    upgrade_schema,
)
from prometheus_client import CollectorRegistry
from sink_kit.postgres import make_engine
from sqlalchemy.engine import Engine


@pytest.fixture
def store_engine(sink_schema: SinkSchema) -> Iterator[Engine]:
    """An engine on a private schema holding the migrated event store."""
    engine = make_engine(sink_schema.url)
    upgrade_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store_metrics() -> StoreMetrics:
    return StoreMetrics(CollectorRegistry())


@pytest.fixture
def store_sink(store_engine: Engine, store_metrics: StoreMetrics) -> EventStoreSink:
    return EventStoreSink(store_engine, "test-group", metrics=store_metrics)


# -- the writer as a child process and the checks against the source ------------------------


SHOP_TOPICS = [f"dbserver1.public.{t}" for t in SHOP_TABLES]
Key = tuple[str, str]  # (table, canonical key JSON)


@pytest.fixture
def writer_env(kafka_bootstrap: str, kafka_group: str, sink_schema: SinkSchema) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_GROUP_ID": kafka_group,
        "DATABASE_URL": sink_schema.url,
        "HEALTH_PORT": "0",
        "LOG_FORMAT": "console",
        "BATCH_MAX_WAIT_MS": "200",
        # The embedded broker's group joins wait out departed members' sessions (TOOLING.md).
        "KAFKA_CONSUMER_EXTRA": '{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}',
        "RETRY_MAX_S": "2",
    }


@pytest.fixture
def start_writer(
    writer_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., ManagedProcess]]:
    """``start_writer(**env)`` runs ``python -m event_store_writer``; all are stopped after."""
    started: list[ManagedProcess] = []

    def _start(**env: str) -> ManagedProcess:
        proc = ManagedProcess(
            f"event-store-writer-{len(started)}",
            [sys.executable, "-m", "event_store_writer"],
            tmp_path / "writer.log",
            env={**writer_env, **env},
        )
        started.append(proc.start())
        return proc

    yield _start
    for proc in started:
        proc.stop(timeout=30)
    print((tmp_path / "writer.log").read_text(errors="replace")[-3000:])


def _key(table: str, key: Any) -> Key:
    return table, orjson.dumps(key, option=orjson.OPT_SORT_KEYS).decode()


def store_state(engine: Engine) -> dict[Key, dict[str, Any]]:
    """Every shop row rebuilt from the store (rows whose last event is a delete are absent)."""
    sql = sa.text(
        "SELECT table_name, key, kind, op, after, unchanged_columns FROM cdc_events "
        "WHERE table_name = ANY(:tables) AND key IS NOT NULL "
        "ORDER BY table_name, key, position NULLS LAST, kind, kafka_offset"
    )
    histories: dict[Key, list[StoredEvent]] = {}
    with engine.connect() as conn:
        for table, key, kind, op, after, unchanged in conn.execute(
            sql, {"tables": list(SHOP_TABLES)}
        ):
            histories.setdefault(_key(table, key), []).append(
                StoredEvent(
                    "",
                    kind,
                    op,
                    key,
                    None,
                    after,
                    tuple(unchanged or ()),
                    None,
                    None,
                    None,
                    None,
                    None,
                    False,
                    "",
                    0,
                    0,
                )  # type: ignore[arg-type]
            )
    out = {}
    for key, events in histories.items():
        row = rebuild_state(events)
        if row is not None:
            out[key] = row
    return out


def source_state(conn: psycopg2.extensions.connection) -> dict[Key, dict[str, Any]]:
    out = {}
    with conn.cursor() as cur:
        for table in SHOP_TABLES:
            cur.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cur.description or ()]
            for values in cur.fetchall():
                row = normalise_row(dict(zip(names, values, strict=True)))
                out[_key(table, {"id": row["id"]})] = row
    conn.rollback()
    return out


def state_diff(store: dict[Key, Any], source: dict[Key, Any], limit: int = 8) -> str:
    """A readable difference ('' when equal)."""
    lines = []
    for key in sorted(source.keys() - store.keys())[:limit]:
        lines.append(f"missing in the store: {key} {source[key]}")
    for key in sorted(store.keys() - source.keys())[:limit]:
        lines.append(f"not in the source:    {key} {store[key]}")
    for key in sorted(k for k in source.keys() & store.keys() if source[k] != store[k])[:limit]:
        lines.append(f"differs: {key}\n  store:  {store[key]}\n  source: {source[key]}")
    return "\n".join(lines)


def expected_ids(bootstrap: str) -> tuple[set[str], set[str], int]:
    """(change ids, tombstone ids, records read) from the CDC topics, read from the start."""
    decode = EventDecoder()
    changes: set[str] = set()
    tombstones: set[str] = set()
    records = read_topic(bootstrap, SHOP_TOPICS, idle=1.5, timeout=60)
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        try:
            row = decode(
                InMemoryMessage(
                    r.topic, r.partition, r.offset, r.key, r.value, r.headers, r.timestamp_ms
                )
            )
        except ParseError:
            continue
        if isinstance(row, ChangeRow):
            (tombstones if row.values[2] == "tombstone" else changes).add(row.event_id)
    return changes, tombstones, len(records)


def stored_ids(engine: Engine) -> tuple[list[str], list[str]]:
    """(change ids, tombstone ids) of the shop tables as stored, with repeats if any."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT event_id, kind FROM cdc_events WHERE table_name = ANY(:t)"),
            {"t": list(SHOP_TABLES)},
        ).all()
    return [i for i, k in rows if k == "change"], [i for i, k in rows if k == "tombstone"]


class StoreChecks:
    """The checks above, as a fixture (test modules cannot import conftest)."""

    store_state = staticmethod(store_state)
    source_state = staticmethod(source_state)
    state_diff = staticmethod(state_diff)
    expected_ids = staticmethod(expected_ids)
    stored_ids = staticmethod(stored_ids)


@pytest.fixture
def checks() -> StoreChecks:
    return StoreChecks()
