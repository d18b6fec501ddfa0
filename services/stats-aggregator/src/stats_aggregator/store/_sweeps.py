"""The sweeps' SQL (``_sweep``): the live states below a sweep version, and the sweep version
recorded per source table (``st_sweeps``, migration 0005).

Part of ``store`` (see ``_read_model``): a sweep reads the keys it deletes with
``live_keys_below``, writes them through the states' and statistics' functions and records its
version per table (``save_sweep``), all in the batch's transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stats_aggregator.store._states import STATE_TABLES


def live_keys_below(
    conn: Connection, table: str, version: str, after: int, limit: int
) -> list[int]:
    """Up to ``limit`` keys of ``table``'s states above ``after``, ascending, that are live and
    whose ``pos_version`` is below ``version`` byte-wise (``COLLATE "C"``) or NULL (positioned
    by LSN: stored before versions); the keys a sweep at ``version`` deletes. Walks the
    primary key (a sweep is rare; no index of its own)."""
    name, _ = STATE_TABLES[table]
    rows = conn.execute(
        sa.text(
            f"SELECT id FROM {name} WHERE id > :after AND NOT deleted "  # noqa: S608
            'AND (pos_version IS NULL OR pos_version < CAST(:version AS text) COLLATE "C") '
            "ORDER BY id LIMIT :limit"
        ),
        {"after": after, "version": version, "limit": limit},
    )
    return [int(r[0]) for r in rows]


def load_sweeps(conn: Connection) -> dict[str, str]:
    """Per source table, the highest sweep version applied (migration 0005)."""
    rows = conn.execute(sa.text("SELECT source_table, version FROM st_sweeps"))
    return {str(t): str(v) for t, v in rows}


def save_sweep(conn: Connection, table: str, version: str) -> None:
    """Record a sweep of ``table`` at ``version``; a lower one than recorded changes nothing."""
    conn.execute(
        sa.text(
            "INSERT INTO st_sweeps AS s (source_table, version) VALUES (:t, :v) "
            "ON CONFLICT (source_table) DO UPDATE SET version = excluded.version, "
            "swept_at = now() WHERE s.version < excluded.version"
        ),
        {"t": table, "v": version},
    )
