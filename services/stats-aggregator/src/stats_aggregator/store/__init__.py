"""The read model in PostgreSQL and the stock projection in DynamoDB: the only package of the
aggregator that imports the storage clients (SQLAlchemy, psycopg2, botocore); an import-linter
contract (``.importlinter``) enforces it.

``sink`` runs each batch in ``batch_transaction`` on the engine ``connect`` builds (schema
migrated), against ``PgStore`` and the functions of ``_read_model``, then the after-commit work
of ``_outbox``; the CLI reads through ``StatsReader`` (``read_models.stats``, re-exported);
``verify`` through ``read_statistics``.

- ``_engine``: the engine from the settings, the migrations, transactions, offsets, health;
- ``_read_model``, ``_states``, ``_sweeps``: the SQL of the statistics, the states, the sweeps;
- ``_outbox``: the alert outbox and the DynamoDB stock projection, after the commit;
- ``_verify_reads``: what ``cdc dev verify`` reads.
"""

from read_models.stats import StatsReader

from stats_aggregator.store._engine import (
    BATCH_LOCK,
    MIGRATION_LOCK,
    MIGRATIONS,
    STARTUP_DB_WAIT_S,
    Connection,
    Engine,
    batch_transaction,
    connect,
    offset_store,
    ping,
    transaction,
)
from stats_aggregator.store._outbox import (
    PAGE,
    UNPROJECTED,
    AlertPublisher,
    InventoryProjection,
    RuntimePublisher,
    inventory_table_definition,
    open_projection,
    publish_alerts,
)
from stats_aggregator.store._read_model import (
    PgStore,
    add_user_totals,
    advance_watermark,
    insert_alerts,
    new_event_ids,
)
from stats_aggregator.store._verify_reads import SourceConnection, read_statistics

__all__ = [
    "BATCH_LOCK",
    "MIGRATIONS",
    "MIGRATION_LOCK",
    "PAGE",
    "STARTUP_DB_WAIT_S",
    "UNPROJECTED",
    "AlertPublisher",
    "Connection",
    "Engine",
    "InventoryProjection",
    "PgStore",
    "RuntimePublisher",
    "SourceConnection",
    "StatsReader",
    "add_user_totals",
    "advance_watermark",
    "batch_transaction",
    "connect",
    "insert_alerts",
    "inventory_table_definition",
    "new_event_ids",
    "offset_store",
    "open_projection",
    "ping",
    "publish_alerts",
    "read_statistics",
    "transaction",
]
