"""Table maintenance of a namespace (``cdc lake maintain``): ``maintain`` compacts every table
of it (``_compact``), then expires its old snapshots and deletes the files only they referenced
(``_expire``).

Compaction runs first: its snapshot becomes the current one and carries the positions, and the
snapshots it made obsolete (with the small files they alone reference) are expired by a later
run, once they are older than ``older_than``. Both steps are safe while the flusher commits
(see their modules) and best effort: a step overtaken too often gives up (the report says so)
and the next run tries again. A catalog or warehouse outage is the runtime's
``RetryableError`` (``transient``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from analytics_flusher.store._iceberg._catalog import transient
from analytics_flusher.store._iceberg._compact import (
    DEFAULT_MIN_INPUT_FILES,
    DEFAULT_TARGET_FILE_BYTES,
    CompactionResult,
    compact,
)
from analytics_flusher.store._iceberg._expire import (
    DEFAULT_RETAIN_LAST,
    ExpiryResult,
    expire_snapshots,
)

__all__ = ["DEFAULT_OLDER_THAN", "MaintenanceReport", "TableMaintenance", "maintain"]

_log = structlog.get_logger("analytics_flusher")

#: How far back a reader can travel in time (and how long a scan may take: a scan of an
#: expired snapshot fails). An hour is ~240 snapshots per table at one commit every 15 s;
#: Iceberg's default of 5 days would be ~29,000, all of them in the metadata file that every
#: commit rewrites.
DEFAULT_OLDER_THAN = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class TableMaintenance:
    """What ``maintain`` did to one table."""

    table: str
    compaction: CompactionResult
    expiry: ExpiryResult


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What ``maintain`` did to every table of ``namespace`` (planned only when ``dry_run``)."""

    namespace: str
    tables: tuple[TableMaintenance, ...]
    dry_run: bool = False

    @property
    def gave_up(self) -> tuple[str, ...]:
        """Tables whose compaction or expiry gave up (the table kept moving)."""
        return tuple(t.table for t in self.tables if t.compaction.gave_up or t.expiry.gave_up)


def maintain(
    catalog: Catalog,
    namespace: str,
    *,
    older_than: timedelta = DEFAULT_OLDER_THAN,
    retain_last: int = DEFAULT_RETAIN_LAST,
    target_file_bytes: int = DEFAULT_TARGET_FILE_BYTES,
    min_input_files: int = DEFAULT_MIN_INPUT_FILES,
    delete_files: bool = True,
    dry_run: bool = False,
    now: datetime | None = None,
) -> MaintenanceReport:
    """Compact, then expire the snapshots taken before ``now - older_than`` (``now``: the
    clock, timezone-aware), of every table of ``namespace``."""
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if older_than < timedelta(0):
        raise ValueError(f"older_than {older_than} is negative")
    cutoff = now - older_than
    with transient(f"listing the tables of {namespace}"):
        identifiers = sorted(catalog.list_tables(namespace))
    done = []
    for identifier in identifiers:
        name = ".".join(identifier)
        try:
            with transient(f"loading {name}"):
                table = catalog.load_table(identifier)
            compaction = compact(
                table,
                target_file_bytes=target_file_bytes,
                min_input_files=min_input_files,
                dry_run=dry_run,
            )
            expiry = expire_snapshots(
                table,
                older_than=cutoff,
                retain_last=retain_last,
                delete_files=delete_files,
                dry_run=dry_run,
            )
        except NoSuchTableError:
            _log.info("table dropped during maintenance; skipped", table=name)
            continue
        done.append(TableMaintenance(name, compaction, expiry))
    report = MaintenanceReport(namespace, tuple(done), dry_run)
    _log.info(
        "maintenance done" if not dry_run else "maintenance planned",
        namespace=namespace,
        tables=len(done),
        compacted=[t.table for t in done if t.compaction.files_removed],
        expired=sum(len(t.expiry.expired) for t in done),
        gave_up=list(report.gave_up),
    )
    return report
