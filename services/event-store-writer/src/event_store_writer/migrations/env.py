"""Alembic environment of the event store: runs on the connection ``upgrade_schema`` hands in.

``sink_kit.postgres.upgrade_schema`` opens a transaction, takes an advisory lock (replicas
starting together migrate one after the other) and passes the connection through
``config.attributes["connection"]``; there is no ``alembic.ini`` and no URL here.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run the event store's migrations through sink_kit.postgres.upgrade_schema "
        "(python -m event_store_writer does it at start)"
    )
context.configure(
    connection=connection,
    target_metadata=None,
    # Our own version table: services sharing a database keep separate migration histories.
    version_table=context.config.attributes.get("version_table", "alembic_version"),
)
with context.begin_transaction():
    context.run_migrations()
