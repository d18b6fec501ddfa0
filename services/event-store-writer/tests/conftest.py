"""Fixtures shared by the event-store writer's tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from devstack import ManagedProcess
from devstack.pytest_plugin import SinkSchema
from event_store_writer import (
    EventStoreSink,
    StoreMetrics,
    upgrade_schema,
)
from event_store_writer.verify import (
    expected_ids,
    source_state,
    state_diff,
    store_state,
    stored_ids,
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
        # The embedded broker's group joins wait out departed members' sessions (devstack README).
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
