"""Alembic environment of the stats aggregator's read model.

Run through ``sink_kit.postgres.upgrade_schema``, which hands in an open connection (holding the
migration advisory lock) as ``config.attributes["connection"]``; the schema is whatever the
connection's ``search_path`` puts first, so tests and deployments choose it with the URL.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run the migrations through sink_kit.postgres.upgrade_schema (it passes the connection)"
    )
context.configure(
    connection=connection,
    target_metadata=None,
    transactional_ddl=True,
    version_table=context.config.attributes.get("version_table", "alembic_version"),
)
with context.begin_transaction():
    context.run_migrations()
