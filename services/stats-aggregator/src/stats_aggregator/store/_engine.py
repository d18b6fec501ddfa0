"""The aggregator's engine and transactions: the engine from ``DATABASE_URL`` with the schema
migrated at start, the batch's transaction under the lock that serialises replicas, the
offsets' table, and the health probe's query.

Batches of all replicas are serialised by a transaction-level advisory lock (``BATCH_LOCK``;
why: ``sink``); the schema migration runs under a lock of its own (``MIGRATION_LOCK``) and is
retried while the database comes up, for ``STARTUP_DB_WAIT_S``. Database errors surface as
the runtime's ``RetryableError``/``PermanentError`` (``sink_kit.postgres.db_errors``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import sqlalchemy as sa
import structlog
from consumer_runtime import RetryableError
from sink_kit.postgres import OffsetStore, db_errors, engine_from_settings, upgrade_schema
from sqlalchemy.engine import Connection, Engine

from stats_aggregator.settings import SERVICE_NAME, Settings

__all__ = [
    "BATCH_LOCK",
    "MIGRATIONS",
    "MIGRATION_LOCK",
    "STARTUP_DB_WAIT_S",
    "Connection",
    "Engine",
    "batch_transaction",
    "connect",
    "offset_store",
    "ping",
    "transaction",
]

MIGRATIONS: Final = Path(__file__).parent.parent / "migrations"
# Serialises batches of all replicas (and the schema migration, under its own name).
BATCH_LOCK: Final = "stats-aggregator:batch"
MIGRATION_LOCK: Final = "stats-aggregator:schema"
# A database restarting together with the service (compose, a failover) gets a minute before
# the start fails and the orchestrator's restart back-off takes over.
STARTUP_DB_WAIT_S: Final = 60.0


def connect(settings: Settings) -> Engine:
    """The production engine: from ``DATABASE_URL``, the schema migrated."""
    engine = engine_from_settings(settings, SERVICE_NAME)
    deadline = time.monotonic() + STARTUP_DB_WAIT_S
    while True:
        try:
            upgrade_schema(
                engine, MIGRATIONS, MIGRATION_LOCK, version_table="stats_alembic_version"
            )
            break
        except RetryableError as exc:
            if time.monotonic() > deadline:
                raise
            structlog.get_logger("stats_aggregator").warning(
                "database unavailable at start; retrying", error=str(exc)
            )
            time.sleep(2)
    return engine


def offset_store() -> OffsetStore:
    """The ``consumer_offsets`` table (claims fence a partition's previous owner)."""
    return OffsetStore(sa.MetaData())


@contextmanager
def transaction(engine: Engine, what: str) -> Iterator[Connection]:
    """One transaction, committed when the block ends; its errors mapped (``what`` failed)."""
    with db_errors(what), engine.begin() as conn:
        yield conn


@contextmanager
def batch_transaction(engine: Engine) -> Iterator[Connection]:
    """A batch's transaction, holding ``BATCH_LOCK`` until it commits or rolls back."""
    with transaction(engine, "write statistics batch") as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": BATCH_LOCK})
        yield conn


def ping(engine: Engine) -> None:
    """One round trip to the database (``SELECT 1``); ``RetryableError`` when it fails."""
    with db_errors("health check"), engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
