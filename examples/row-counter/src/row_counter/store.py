"""The counts in PostgreSQL: the only module of the example that imports the database client
(SQLAlchemy), as in every service (an import-linter contract enforces it).

``CountStore`` keeps the per-table counts and the batch's offsets in one transaction
(``sink_kit.postgres.OffsetStore``, which also fences a zombie member). Storage errors are
mapped by ``db_errors``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from consumer_runtime import Offsets, TopicPartition
from sink_kit.postgres import OffsetStore, db_errors, engine_from_settings
from sink_kit.upsert import upsert_rows

from row_counter.settings import NAME, Settings

COLUMNS = (("table_name", "text"), ("changes", "bigint"))


class CountStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        metadata = sa.MetaData()
        sa.Table(
            "row_counts",
            metadata,
            sa.Column("table_name", sa.Text, primary_key=True),
            sa.Column("changes", sa.BigInteger, nullable=False),
        )
        self.offsets = OffsetStore(metadata)
        with db_errors("create tables"):
            metadata.create_all(engine)  # an example; the services migrate with Alembic

    @classmethod
    def from_settings(cls, settings: Settings) -> CountStore:
        return cls(engine_from_settings(settings, NAME))

    def claim(self, group: str, partitions: Sequence[TopicPartition]) -> Offsets:
        """The offsets stored for ``partitions``, claimed for this member of ``group``."""
        with db_errors("claim partitions"), self.engine.begin() as conn:
            return self.offsets.claim(conn, group, partitions)

    def add(self, group: str, rows: list[tuple[str, int]], next_offsets: Offsets) -> None:
        """Add ``rows`` (table, changes) to the counts and store ``next_offsets``, atomically."""
        with db_errors("write counts"), self.engine.begin() as conn:
            if rows:
                update = {"changes": "t.changes + excluded.changes"}
                upsert_rows(conn, "row_counts", COLUMNS, rows, ["table_name"], update)
            self.offsets.save(conn, group, next_offsets)

    def close(self) -> None:
        self.engine.dispose()
