"""The event store in PostgreSQL: the only package of the writer that imports the database
client (SQLAlchemy, psycopg2); an import-linter contract (``.importlinter``) enforces it.

``sink`` writes through ``BatchWriter`` on the engine ``connect`` builds (schema migrated);
the CLI reads through ``StoreReader``; ``verify`` through the reads of ``_verify_reads``.

- ``_engine``: the engine from the settings, the migrations, the health probe;
- ``_writer``, ``_sql``: one write of a batch (COPY, absorbed ids, offsets) and its SQL;
- ``_reader``: the reads of ``read_models.events`` (history, state, dead letters) plus the
  DLQ's replays and discards, for the operator CLI;
- ``_verify_reads``: what ``cdc dev verify`` reads from the store and from the source.
"""

from event_store_writer.store._engine import (
    MIGRATIONS,
    VERSION_TABLE,
    Engine,
    connect,
    ping,
    upgrade_schema,
)
from event_store_writer.store._reader import StoreReader
from event_store_writer.store._verify_reads import (
    SourceConnection,
    read_histories,
    source_rows,
    stored_event_kinds,
    user_events_and_dead_letters,
)
from event_store_writer.store._writer import BatchWriter

__all__ = [
    "MIGRATIONS",
    "VERSION_TABLE",
    "BatchWriter",
    "Engine",
    "SourceConnection",
    "StoreReader",
    "connect",
    "ping",
    "read_histories",
    "source_rows",
    "stored_event_kinds",
    "upgrade_schema",
    "user_events_and_dead_letters",
]
