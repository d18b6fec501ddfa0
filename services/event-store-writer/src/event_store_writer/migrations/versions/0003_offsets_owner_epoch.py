"""consumer_offsets.owner_epoch: the fencing token of each partition's current writer.

A member claims a partition on assignment (the epoch goes up by one) and every write of its
offsets checks, in the same transaction, that the row still carries that epoch and that the
offset does not move backwards (``sink_kit.postgres.OffsetStore``): a member that stalled past
its session timeout cannot overwrite its successor's work. Existing rows start at 0; adding a
column with a constant default rewrites nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE consumer_offsets ADD COLUMN owner_epoch bigint NOT NULL DEFAULT 0")
    op.execute(
        "COMMENT ON COLUMN consumer_offsets.owner_epoch IS 'Fencing token: raised by each "
        "member that claims the partition; a write carrying an older one is refused.'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE consumer_offsets DROP COLUMN IF EXISTS owner_epoch")
