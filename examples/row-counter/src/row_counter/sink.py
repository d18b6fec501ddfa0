"""The sink: per-table counts and the batch's offsets in one PostgreSQL transaction.

Sink-managed: the runtime resumes each partition from the offsets stored with the counts, so
a crash, a redelivery or a rebalance counts no record twice (``sink_kit.postgres.OffsetStore``,
which also fences a zombie member). Storage errors are mapped by ``db_errors``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from consumer_runtime import BaseSink, Batch, Offsets, TopicPartition
from sink_kit.postgres import OffsetStore, db_errors, engine_from_settings
from sink_kit.upsert import upsert_rows

from row_counter.domain import count
from row_counter.settings import NAME, Settings

COLUMNS = (("table_name", "text"), ("changes", "bigint"))


class RowCountSink(BaseSink[str]):
    def __init__(self, engine: sa.Engine, group: str) -> None:
        self.engine = engine
        self.group = group
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
    def from_settings(cls, settings: Settings) -> RowCountSink:
        return cls(engine_from_settings(settings, NAME), settings.group_id(NAME))

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> Offsets:
        with db_errors("claim partitions"), self.engine.begin() as conn:
            return self.offsets.claim(conn, self.group, partitions)

    def write_batch(self, batch: Batch[str]) -> Offsets | None:
        rows = count(batch)
        with db_errors("write counts"), self.engine.begin() as conn:
            if rows:
                update = {"changes": "t.changes + excluded.changes"}
                upsert_rows(conn, "row_counts", COLUMNS, rows, ["table_name"], update)
            self.offsets.save(conn, self.group, batch.next_offsets)
        return None

    def close(self) -> None:
        self.engine.dispose()
