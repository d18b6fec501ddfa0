"""``st_sweeps``: per source table, the highest sweep version applied (``domain``, step 4).

A sweep deletes the table's live states whose version is below the sweep version S of a
Debezium snapshot's last read of the table. A key the read model has not stored yet (its
partition lags behind the marker's, or a dead letter of it waits for a replay) has no state to
delete: its older changes, arriving later, would create it although the new snapshot did not
read it. With S recorded here, any change of the table at or below it is skipped like a
re-emit: as if the sweep had deleted every key, seen or not.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE st_sweeps (
            source_table text PRIMARY KEY,
            version text COLLATE "C" NOT NULL,
            swept_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE st_sweeps")
