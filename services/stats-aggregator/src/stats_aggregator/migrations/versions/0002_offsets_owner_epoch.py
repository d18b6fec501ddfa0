"""consumer_offsets.owner_epoch: the fencing token of each partition's current writer
(``sink_kit.migrations.add_offsets_owner_epoch``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op
from sink_kit.migrations import add_offsets_owner_epoch, drop_offsets_owner_epoch

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_offsets_owner_epoch(op)


def downgrade() -> None:
    drop_offsets_owner_epoch(op)
