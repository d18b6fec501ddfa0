"""The lake as Apache Iceberg tables (in progress: the running service does not use it yet; it
writes Parquet objects through ``store._s3``).

- ``_catalog``: ``CatalogConfig`` and ``open_catalog``: a pyiceberg ``SqlCatalog`` in
  PostgreSQL with an S3 warehouse, the namespace created when missing;
- ``_tables``: the changes tables (``orders_changes``, ``order_items_changes``), created when
  missing, and their rows from the decoded changes;
- ``_positions``: pure: the Kafka positions a snapshot records, and the rule that fences a
  zombie's append or skips a replayed one;
- ``_commit``: ``ExactlyOnceCommitter``: appends checked against that rule and committed only
  on the snapshot they were checked against (no rebase by pyiceberg's own retry);
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
    decode_positions,
    encode_positions,
    plan_commit,
)
from analytics_flusher.store._iceberg._tables import (
    CHANGES_TABLES,
    ITEMS_CHANGES,
    ORDERS_CHANGES,
    ensure_changes_tables,
    item_rows,
    order_rows,
)

__all__ = [
    "CHANGES_TABLES",
    "DEFAULT_MIN_INPUT_FILES",
    "DEFAULT_OLDER_THAN",
    "DEFAULT_RETAIN_LAST",
    "DEFAULT_TARGET_FILE_BYTES",
    "ITEMS_CHANGES",
    "ORDERS_CHANGES",
    "SUMMARY_GENERATION",
    "SUMMARY_POSITIONS",
    "CatalogConfig",
    "CommitPlan",
    "CommitResult",
    "CompactionPlan",
    "CompactionResult",
    "ExactlyOnceCommitter",
    "ExpiryPlan",
    "ExpiryResult",
    "MaintenanceReport",
    "Position",
    "TableMaintenance",
    "compact",
    "decode_positions",
    "encode_positions",
    "ensure_changes_tables",
    "ensure_namespace",
    "expire_snapshots",
    "item_rows",
    "maintain",
    "open_catalog",
    "order_rows",
    "plan_commit",
    "plan_compaction",
    "plan_expiry",
    "recorded_positions",
]
