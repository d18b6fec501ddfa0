"""Per-key positions are source versions (``cdc_events.source_version``), not change LSNs.

The change LSN alone does not order one row's changes: a transaction open across the Debezium
snapshot's consistent point wrote its changes below the snapshot's LSN and committed after it,
so its change of a row the snapshot also read looked older than that read and was skipped. The
version (snapshot read before streamed change, then commit key, then change LSN) orders them;
it is fixed-width text compared byte-wise, hence ``COLLATE "C"``.

- ``pos_version`` on the four state tables: the version of the change that produced the state.
  Rows stored before this revision keep NULL, which means "positioned by ``pos_lsn`` alone":
  ``domain.is_reemit`` compares them by LSN (the rule that stored them, right for every pair
  of changes but the one above) until their next applied change gives them a version. No
  backfill is exact: a version needs the commit key, which was never stored, and one made from
  the LSN alone (commit key = LSN) would sort a later change of the same transaction before
  the stored one.
- ``pos_lsn`` stays and is still written with every change: the alerts' ``source.lsn``, the
  rule for the rows above, and a downgrade.
- ``st_products.projected_version``: the version last written to the DynamoDB projection
  (``projected_lsn`` stays for rows positioned by LSN); the partial index follows.
- ``low_stock_alerts.source_version``: the crossing change's version (the message carries it).
- A replica of the previous release still running during a rolling update writes ``pos_lsn``
  and leaves ``pos_version`` as it was, stale. A trigger on each state table clears
  ``pos_version`` when an update moves ``pos_lsn`` but not ``pos_version`` (this release
  always changes the version when it writes a state), so such a row is compared by LSN again,
  the rule that wrote it. A later revision can drop the triggers once no replica of a release
  before this one can run.

Adding nullable columns rewrites no table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATE_TABLES = ("st_customers", "st_products", "st_orders", "st_order_items")

# Rows whose state the DynamoDB projection has not written yet: by version, or by LSN for a row
# positioned by LSN (also when this release had projected it before a replica of the previous
# one changed it: that replica's own write could not replace this release's item).
_UNPROJECTED = (
    "pos_version > coalesce(projected_version, '') "
    "OR (pos_version IS NULL AND pos_lsn IS NOT NULL "
    "AND (pos_lsn > coalesce(projected_lsn, -1) OR projected_version IS NOT NULL))"
)

_UPGRADE = f"""
ALTER TABLE st_customers ADD COLUMN pos_version text COLLATE "C";
ALTER TABLE st_products ADD COLUMN pos_version text COLLATE "C";
ALTER TABLE st_orders ADD COLUMN pos_version text COLLATE "C";
ALTER TABLE st_order_items ADD COLUMN pos_version text COLLATE "C";
ALTER TABLE st_products ADD COLUMN projected_version text COLLATE "C";
ALTER TABLE low_stock_alerts ADD COLUMN source_version text COLLATE "C";

DROP INDEX st_products_unprojected;
CREATE INDEX st_products_unprojected ON st_products (id) WHERE {_UNPROJECTED};

CREATE FUNCTION stats_position_by_lsn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.pos_version := NULL;
    RETURN NEW;
END
$$;
"""

_TRIGGER = """
CREATE TRIGGER {table}_position_by_lsn BEFORE UPDATE ON {table} FOR EACH ROW
    WHEN (NEW.pos_lsn IS DISTINCT FROM OLD.pos_lsn
          AND NEW.pos_version IS NOT DISTINCT FROM OLD.pos_version)
    EXECUTE FUNCTION stats_position_by_lsn();
COMMENT ON COLUMN {table}.pos_version IS 'cdc_events.source_version of the change that produced
the state (compared byte-wise); NULL: positioned by pos_lsn alone (stored before versions, or by
a replica of the previous release).';
"""

_DOWNGRADE = """
DROP FUNCTION stats_position_by_lsn() CASCADE;
DROP INDEX st_products_unprojected;
ALTER TABLE low_stock_alerts DROP COLUMN source_version;
ALTER TABLE st_products DROP COLUMN projected_version;
ALTER TABLE st_order_items DROP COLUMN pos_version;
ALTER TABLE st_orders DROP COLUMN pos_version;
ALTER TABLE st_products DROP COLUMN pos_version;
ALTER TABLE st_customers DROP COLUMN pos_version;
CREATE INDEX st_products_unprojected ON st_products (id)
    WHERE pos_lsn > coalesce(projected_lsn, -1);
"""


def upgrade() -> None:
    op.execute(_UPGRADE)
    for table in STATE_TABLES:
        op.execute(_TRIGGER.format(table=table))


def downgrade() -> None:
    op.execute(_DOWNGRADE)
