"""Schema steps every sink-managed service's migrations share (Alembic ``op`` calls).

The offsets table (``sink_kit.postgres.OffsetStore``) is created by each service's own first
migration; the steps that change it later are written once, here, and each service's migration
calls them, so two services never carry two versions of one column's DDL.
"""

from __future__ import annotations

from typing import Any

__all__ = ["add_offsets_owner_epoch", "drop_offsets_owner_epoch"]


def add_offsets_owner_epoch(op: Any, table: str = "consumer_offsets") -> None:
    """``owner_epoch``: the fencing token of each partition's current writer.

    A member claims a partition on assignment (the epoch goes up by one) and every write of its
    offsets checks, in the same transaction, that the row still carries that epoch and that the
    offset does not move backwards (``OffsetStore``): a member that stalled past its session
    timeout cannot overwrite its successor's work. Existing rows start at 0; adding a column
    with a constant default rewrites nothing.
    """
    op.execute(f"ALTER TABLE {table} ADD COLUMN owner_epoch bigint NOT NULL DEFAULT 0")
    op.execute(
        f"COMMENT ON COLUMN {table}.owner_epoch IS 'Fencing token: raised by each "
        "member that claims the partition; a write carrying an older one is refused.'"
    )


def drop_offsets_owner_epoch(op: Any, table: str = "consumer_offsets") -> None:
    op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS owner_epoch")
