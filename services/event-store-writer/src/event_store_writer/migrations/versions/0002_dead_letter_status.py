"""dead_letter_queue: who changed a row's status, when, and why (``cdc dlq replay|discard``).

The record itself was kept losslessly from the start (``key``, ``value`` bytea; ``headers``
jsonb ``[[name, base64 or null], ...]``: the record's own headers, not the DLQ topic's
``__connect.errors.*``), so a replay needs nothing more. Added, all nullable: existing rows
stay as they are (NULL: never changed), and adding them rewrites nothing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE dead_letter_queue
            ADD COLUMN status_changed_at timestamptz,
            ADD COLUMN status_changed_by text,
            ADD COLUMN status_reason     text
        """
    )
    op.execute(
        "COMMENT ON COLUMN dead_letter_queue.headers IS 'The record''s own headers as received, "
        "in order: [[name, base64 or null], ...]; NULL when it had none.'"
    )
    op.execute(
        "COMMENT ON COLUMN dead_letter_queue.status_changed_at IS 'When cdc dlq replay/discard "
        "set the status (NULL: never changed).'"
    )
    op.execute(
        "COMMENT ON COLUMN dead_letter_queue.status_changed_by IS 'user@host of the operator "
        "who changed the status.'"
    )
    op.execute(
        "COMMENT ON COLUMN dead_letter_queue.status_reason IS 'Why the row was discarded "
        "(cdc dlq discard --reason).'"
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE dead_letter_queue
            DROP COLUMN IF EXISTS status_reason,
            DROP COLUMN IF EXISTS status_changed_by,
            DROP COLUMN IF EXISTS status_changed_at
        """
    )
