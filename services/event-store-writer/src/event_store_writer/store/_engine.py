"""The writer's engine: built from ``DATABASE_URL``, the schema migrated at start, and the
health probe's query.

Alembic's ``upgrade head`` runs under an advisory lock (``sink_kit.postgres.upgrade_schema``),
so replicas starting together migrate one after the other; while the database is still coming
up the migration is retried for ``_START_BUDGET_S`` before the start fails.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import structlog
from consumer_runtime import RetryableError
from sink_kit.postgres import engine_from_settings
from sink_kit.postgres import upgrade_schema as _upgrade_schema
from sqlalchemy.engine import Engine

from event_store_writer._metrics import SERVICE
from event_store_writer.settings import Settings

__all__ = ["MIGRATIONS", "VERSION_TABLE", "Engine", "connect", "ping", "upgrade_schema"]

MIGRATIONS = Path(__file__).parent.parent / "migrations"
VERSION_TABLE = "event_store_alembic_version"
_log = structlog.get_logger("event_store_writer")

# Replicas starting together while the database is still coming up: keep trying the migration
# for this long before giving up (the orchestrator then restarts the pod).
_START_BUDGET_S = 120.0


def upgrade_schema(engine: Engine, budget_s: float = _START_BUDGET_S) -> None:
    """Alembic ``upgrade head`` under the advisory lock, retried while the database is down."""
    # Alembic logs every plugin it sets up at INFO; the writer's own logs say what matters.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    deadline = time.monotonic() + budget_s
    delay = 0.5
    while True:
        try:
            _upgrade_schema(
                engine,
                MIGRATIONS,
                lock_name=f"{SERVICE}.migrations",
                version_table=VERSION_TABLE,
            )
            return
        except RetryableError as exc:
            if time.monotonic() + delay > deadline:
                raise
            _log.warning("database not reachable for the migration; retrying", error=str(exc))
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def connect(settings: Settings) -> Engine:
    """The production engine: from ``DATABASE_URL``, the schema migrated."""
    engine = engine_from_settings(settings, application_name=SERVICE)
    upgrade_schema(engine)
    return engine


def ping(engine: Engine) -> None:
    """One round trip to the database (``SELECT 1``); raises whatever the failure."""
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
