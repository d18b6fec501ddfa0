"""What the Iceberg tables record about themselves, for operators (``cdc lake snapshots``,
``cdc lake tables``): every snapshot of a table with its summary (the counts pyiceberg records,
and the Kafka positions and generation an ``ExactlyOnceCommitter`` commit records, ``_positions``)
and each table's current state. Read from the tables' metadata only: nothing is scanned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from consumer_runtime import TopicPartition
from pyiceberg.catalog import Catalog
from pyiceberg.table.snapshots import Snapshot, Summary

from analytics_flusher.errors import LakeReadError
from analytics_flusher.store._iceberg._positions import (
    SUMMARY_GENERATION,
    SUMMARY_POSITIONS,
    Position,
    decode_positions,
)
from analytics_flusher.store._iceberg._read import EPOCH, load_tables

__all__ = ["SnapshotInfo", "TableInfo", "list_tables", "snapshots"]


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One snapshot of a table, as its metadata and summary record it. ``positions`` and
    ``generation``: what an ``ExactlyOnceCommitter`` commit records (None: not recorded, e.g. a
    snapshot made by another tool); the counts: None when the summary does not say."""

    table: str
    snapshot_id: int
    parent_id: int | None
    committed_at: datetime  # UTC
    operation: str | None
    added_records: int | None
    deleted_records: int | None
    added_files: int | None
    deleted_files: int | None
    positions: dict[TopicPartition, Position] | None
    generation: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: positions as ``{topic: {partition: {"offset", "generation"}}}``."""
        positions: dict[str, dict[str, dict[str, int]]] | None = None
        if self.positions is not None:
            positions = {}
            for tp, position in sorted(self.positions.items()):
                positions.setdefault(tp.topic, {})[str(tp.partition)] = {
                    "offset": position.offset,
                    "generation": position.generation,
                }
        return {
            "table": self.table,
            "snapshot_id": self.snapshot_id,
            "parent_id": self.parent_id,
            "committed_at": self.committed_at.isoformat(),
            "operation": self.operation,
            "added_records": self.added_records,
            "deleted_records": self.deleted_records,
            "added_files": self.added_files,
            "deleted_files": self.deleted_files,
            "positions": positions,
            "generation": self.generation,
        }


def _count(summary: Summary | None, key: str) -> int | None:
    value = summary.get(key) if summary is not None else None
    return int(value) if value is not None and str(value).isdigit() else None


def _info(table: str, snapshot: Snapshot) -> SnapshotInfo:
    summary = snapshot.summary
    positions_text = summary.get(SUMMARY_POSITIONS) if summary is not None else None
    positions = None
    if positions_text is not None:
        try:
            positions = decode_positions(positions_text)
        except ValueError as exc:  # the committer's own rule would refuse this table too
            raise LakeReadError(
                f"{table}: snapshot {snapshot.snapshot_id} records unreadable positions: {exc}"
            ) from exc
    return SnapshotInfo(
        table=table,
        snapshot_id=snapshot.snapshot_id,
        parent_id=snapshot.parent_snapshot_id,
        committed_at=EPOCH + timedelta(milliseconds=snapshot.timestamp_ms),
        operation=summary.operation.value if summary is not None else None,
        added_records=_count(summary, "added-records"),
        deleted_records=_count(summary, "deleted-records"),
        added_files=_count(summary, "added-data-files"),
        deleted_files=_count(summary, "deleted-data-files"),
        positions=positions,
        generation=_count(summary, SUMMARY_GENERATION),
    )


def snapshots(catalog: Catalog, namespace: str, table: str | None = None) -> list[SnapshotInfo]:
    """The snapshots of every table of ``namespace`` (or of ``table``), per table (by name),
    oldest first. ``LakeReadError`` for a table the namespace does not have."""
    out: list[SnapshotInfo] = []
    for name, loaded in load_tables(catalog, namespace, None if table is None else [table]).items():
        ordered = sorted(loaded.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number or 0))
        out += [_info(name, snapshot) for snapshot in ordered]
    return out


@dataclass(frozen=True, slots=True)
class TableInfo:
    """A table and its current snapshot (None: no snapshot, no rows); ``rows`` and ``files``
    are the totals its summary records (not counted by a scan)."""

    name: str
    rows: int | None
    files: int | None
    snapshots: int
    current: SnapshotInfo | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.name,
            "rows": self.rows,
            "data_files": self.files,
            "snapshots": self.snapshots,
            "current_snapshot_id": self.current.snapshot_id if self.current else None,
            "committed_at": self.current.committed_at.isoformat() if self.current else None,
        }


def list_tables(catalog: Catalog, namespace: str) -> list[TableInfo]:
    """The tables of ``namespace`` by name, from their metadata (nothing is scanned)."""
    out = []
    for name, table in load_tables(catalog, namespace).items():
        current = table.current_snapshot()
        summary = current.summary if current is not None else None
        out.append(
            TableInfo(
                name=name,
                rows=_count(summary, "total-records") if current is not None else 0,
                files=_count(summary, "total-data-files") if current is not None else 0,
                snapshots=len(table.snapshots()),
                current=_info(name, current) if current is not None else None,
            )
        )
    return out
