"""The data lake on S3: the only package of the flusher that imports the storage clients
(pyarrow to encode its objects, DuckDB to query them, pyiceberg and SQLAlchemy for the Iceberg
catalog; boto3 through ``sink_kit.aws``); an import-linter contract (``.importlinter``)
enforces it.

``sink`` writes through the ``S3Store`` that ``open_lake`` opens, with the objects encoded by
``_parquet`` (on the uploads' thread, ``_uploads``); ``verify`` reads the lake back through
``LakeMirror``.

- ``_parquet``: report tables as Parquet (and JSON lines), byte for byte reproducibly;
- ``_s3``: the bucket the sink writes to, and its client;
- ``_verify_reads``: what ``cdc dev verify`` reads (the mirrored objects, their versions);
- ``_iceberg``: the lake as Iceberg tables (pyiceberg; a SQL catalog in PostgreSQL or AWS
  Glue): the changes tables ``sink`` commits to through ``open_writer``'s ``ChangesWriter``.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from analytics_flusher.settings import FlusherSettings
from analytics_flusher.store._iceberg import (
    ITEMS_CHANGES,
    ORDERS_CHANGES,
    CatalogConfig,
    ChangesWriter,
    LakeJobs,
    open_changes_writer,
)
from analytics_flusher.store._parquet import SCHEMAS, encode_jsonl, encode_parquet
from analytics_flusher.store._s3 import S3Store, open_lake
from analytics_flusher.store._verify_reads import IMAGE_REPORTS, IcebergReader, LakeMirror

if TYPE_CHECKING:
    from analytics_flusher.store._verify_reads import SourceConnection as SourceConnection

__all__ = [
    "IMAGE_REPORTS",
    "SCHEMAS",
    "CatalogConfig",
    "ChangesWriter",
    "IcebergReader",
    "LakeJobs",
    "LakeMirror",
    "S3Store",
    "encode_jsonl",
    "encode_parquet",
    "open_jobs",
    "open_lake",
    "open_writer",
]


def open_writer(
    settings: FlusherSettings, registry: CollectorRegistry | None = None
) -> ChangesWriter | None:
    """The writer of the Iceberg changes tables the settings name (None: no catalog
    configured); the catalog, namespace and tables are created when missing."""
    config = settings.catalog_config()
    if config is None:
        return None
    tables = {settings.orders_table: ORDERS_CHANGES, settings.items_table: ITEMS_CHANGES}
    return open_changes_writer(
        config, tables, interval_s=settings.lake_commit_interval_seconds, registry=registry
    )


def open_jobs(
    settings: FlusherSettings,
    leader: Callable[[], bool],
    registry: CollectorRegistry | None = None,
) -> LakeJobs | None:
    """The lake's scheduled jobs (report tables, maintenance), started; None without a catalog
    or with both intervals 0."""
    config = settings.catalog_config()
    reports, maintenance = (
        settings.lake_reports_interval_seconds,
        settings.lake_maintain_interval_seconds,
    )
    if config is None or (reports <= 0 and maintenance <= 0):
        return None
    return LakeJobs(
        config,
        leader,
        window_ms=settings.window_seconds * 1000,
        top_n=settings.top_n,
        reports_interval_s=reports,
        maintain_interval_s=maintenance,
        snapshot_retention_s=settings.lake_snapshot_retention_seconds,
        registry=registry,
    ).start()
