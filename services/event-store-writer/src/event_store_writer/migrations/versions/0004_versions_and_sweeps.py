"""cdc_events.version and cdc_sweeps: a row's history in version order, and the rows a new
snapshot did not read.

``version`` is ``cdc_events.Versions.of(change)`` (``text COLLATE "C"``: compared byte-wise, as
the versions are meant to be). The LSN (``position``) does not order a row's changes across
snapshots: the first transaction streamed after a snapshot may hold LSNs below the snapshot's
read of the same row although it committed after it, and a snapshot taken after Debezium lost
its offsets outranks everything streamed before it. A tombstone carries its delete's version.
Nullable and without a default: adding it rewrites no partition, and the rows stored before it
keep NULL (the read side orders them before every row with a version, by position as before:
see the README's "Order of a row's history").

``cdc_sweeps`` holds one row per table and sweep (``cdc_events.sweep_version`` of a snapshot's
last read of the table), written in the transaction of the batch holding that read; the
primary key makes a redelivery of the read a no-op. A row of the table whose newest change has
a version below the table's highest sweep was neither read by that snapshot nor changed after
it: it is gone from the source (the snapshot emits no delete for it).

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


def upgrade() -> None:
    op.execute('ALTER TABLE cdc_events ADD COLUMN version text COLLATE "C"')
    op.execute(
        "COMMENT ON COLUMN cdc_events.version IS 'cdc_events.Versions.of(change): the order of "
        "a row''s changes, across snapshots (byte-wise); a tombstone has its delete''s. NULL: "
        "stored before migration 0004 (ordered before every version, by position).'"
    )
    op.execute(
        """
        CREATE TABLE cdc_sweeps (
            table_name      text        NOT NULL,
            sweep_version   text        COLLATE "C" NOT NULL,
            event_id        text        COLLATE "C" NOT NULL,
            topic           text        NOT NULL,
            kafka_partition integer     NOT NULL,
            kafka_offset    bigint      NOT NULL,
            event_time      timestamptz NOT NULL,
            recorded_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (table_name, sweep_version)
        )
        """
    )
    op.execute(
        "COMMENT ON TABLE cdc_sweeps IS 'One row per table and snapshot: the sweep_version of "
        "the snapshot''s last read of the table (event_id, its Kafka position and source time). "
        "A row of the table whose newest version is below the highest sweep is deleted.'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS cdc_sweeps")
    op.execute("ALTER TABLE cdc_events DROP COLUMN IF EXISTS version")
