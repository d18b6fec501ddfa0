"""The lake as Apache Iceberg tables: the changes tables the sink commits to (``_writer``).

- ``_catalog``: ``CatalogConfig`` and ``open_catalog``: a pyiceberg ``SqlCatalog`` in
  PostgreSQL or the AWS Glue Data Catalog (``read_models.lake``), with an S3 warehouse, the
  namespace created when missing;
- ``_tables``: the changes tables (``orders_changes``, ``order_items_changes``), created when
  missing, and their rows from the decoded changes;
- ``_positions``: pure: the Kafka positions a snapshot records, and the rule that fences a
  zombie's append or skips a replayed one;
- ``_commit``: ``ExactlyOnceCommitter``: claims, and appends checked against that rule and
  committed only on the snapshot they were checked against (no rebase by pyiceberg's own retry);
- ``_writer``: ``ChangesWriter``: the sink's per-partition buffers, committed on an interval;
- ``_read``: the tables read back at a point in time (now, a snapshot id, a time), the
  current-state views over the changes tables, and SQL over both through DuckDB (``cdc lake``);
- ``_snapshots``: each table's snapshots (their summaries: counts, positions, generation) and
  its current state, from the metadata;
- ``_reports``: the report tables, recomputed from the changes tables (exact by construction);
- ``_jobs``: the reports and the maintenance on a schedule, in the flusher, while it leads;
- ``_compact``: the small files of a partition rewritten as few, in one snapshot replacing
  exactly them, committed only on a head where they are still live;
- ``_expire``: old snapshots expired, keeping the positions reachable, and the files only they
  referenced deleted;
- ``_maintain``: both over every table of a namespace (``cdc lake maintain``).
"""

from analytics_flusher.store._iceberg._catalog import CatalogConfig, ensure_namespace, open_catalog
from analytics_flusher.store._iceberg._commit import (
    CommitResult,
    ExactlyOnceCommitter,
    recorded_positions,
)
from analytics_flusher.store._iceberg._compact import (
    DEFAULT_MIN_INPUT_FILES,
    DEFAULT_TARGET_FILE_BYTES,
    CompactionPlan,
    CompactionResult,
    compact,
    plan_compaction,
)
from analytics_flusher.store._iceberg._expire import (
    DEFAULT_RETAIN_LAST,
    ExpiryPlan,
    ExpiryResult,
    expire_snapshots,
    plan_expiry,
)
from analytics_flusher.store._iceberg._jobs import LakeJobs
from analytics_flusher.store._iceberg._maintain import (
    DEFAULT_OLDER_THAN,
    MaintenanceReport,
    TableMaintenance,
    maintain,
)
from analytics_flusher.store._iceberg._positions import (
    SUMMARY_GENERATION,
    SUMMARY_POSITIONS,
    CommitPlan,
    Position,
    claim_key,
    decode_claims,
    decode_positions,
    encode_positions,
    plan_commit,
)
from analytics_flusher.store._iceberg._read import (
    CURRENT_VIEWS,
    AsOf,
    lake_query,
    load_tables,
    open_for_reading,
    resolve_as_of,
    scan_tables,
)
from analytics_flusher.store._iceberg._reports import (
    REPORT_SOURCES,
    REPORT_TABLES,
    ReportsResult,
    compute_reports,
    materialize_reports,
)
from analytics_flusher.store._iceberg._snapshots import (
    SnapshotInfo,
    TableInfo,
    list_tables,
    snapshots,
)
from analytics_flusher.store._iceberg._tables import (
    CHANGES_TABLES,
    ITEMS_CHANGES,
    ORDERS_CHANGES,
    ensure_changes_tables,
    item_rows,
    order_rows,
)
from analytics_flusher.store._iceberg._writer import (
    ChangesWriter,
    WriterMetrics,
    open_changes_writer,
)

__all__ = [
    "CHANGES_TABLES",
    "CURRENT_VIEWS",
    "DEFAULT_MIN_INPUT_FILES",
    "DEFAULT_OLDER_THAN",
    "DEFAULT_RETAIN_LAST",
    "DEFAULT_TARGET_FILE_BYTES",
    "ITEMS_CHANGES",
    "ORDERS_CHANGES",
    "REPORT_SOURCES",
    "REPORT_TABLES",
    "SUMMARY_GENERATION",
    "SUMMARY_POSITIONS",
    "AsOf",
    "CatalogConfig",
    "ChangesWriter",
    "CommitPlan",
    "CommitResult",
    "CompactionPlan",
    "CompactionResult",
    "ExactlyOnceCommitter",
    "ExpiryPlan",
    "ExpiryResult",
    "LakeJobs",
    "MaintenanceReport",
    "Position",
    "ReportsResult",
    "SnapshotInfo",
    "TableInfo",
    "TableMaintenance",
    "WriterMetrics",
    "claim_key",
    "compact",
    "compute_reports",
    "decode_claims",
    "decode_positions",
    "encode_positions",
    "ensure_changes_tables",
    "ensure_namespace",
    "expire_snapshots",
    "item_rows",
    "lake_query",
    "list_tables",
    "load_tables",
    "maintain",
    "materialize_reports",
    "open_catalog",
    "open_changes_writer",
    "open_for_reading",
    "order_rows",
    "plan_commit",
    "plan_compaction",
    "plan_expiry",
    "recorded_positions",
    "resolve_as_of",
    "scan_tables",
    "snapshots",
]
