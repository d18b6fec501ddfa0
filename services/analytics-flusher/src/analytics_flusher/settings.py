"""The flusher's settings: the runtime's (Kafka, batching, health) plus the data lake's.

Read once from the environment at the entry point; environment names are the field names
upper-cased (``S3_BUCKET``, ``WINDOW_SECONDS``, ...). See the README for the full table.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Literal

from consumer_runtime import RuntimeSettings
from pydantic import AnyHttpUrl, Field, SecretStr
from pydantic_settings import NoDecode

from analytics_flusher.domain import WindowConfig

if TYPE_CHECKING:
    from analytics_flusher.store._iceberg import CatalogConfig

#: What the open windows of one process may hold, estimated (``MAX_OPEN_BYTES``): 32 MiB, and
#: as much again for closed parts still uploading. The pod's limit is 512 MiB (k8s/base). The
#: runtime alone (Python, librdkafka and its fetch queue, the batch, pyarrow, boto3) peaked at
#: ~205 MiB over a backlog of 100 KB rows, and a part being encoded is copied into Arrow and
#: Parquet buffers. Measured peaks over that backlog (README, "Memory"): 400 MiB with 32 MiB,
#: 483 MiB with 64 MiB (too close to the limit), 809 MiB unbounded.
DEFAULT_MAX_OPEN_BYTES = 32 * 1024 * 1024


class FlusherSettings(RuntimeSettings):
    """Environment: ``S3_BUCKET``, ``S3_PREFIX``, ``AWS_ENDPOINT_URL``, ``WINDOW_SECONDS``,
    ``GRACE_SECONDS``, ``IDLE_FLUSH_SECONDS``, ``MAX_OPEN_WINDOWS``, ``MAX_OPEN_ROWS``,
    ``MAX_OPEN_BYTES``, ``TOP_N``, ``UPLOAD_CONCURRENCY``, ``UPLOAD_MAX_INFLIGHT``, ``JSONL_COPY``,
    ``ORDERS_TABLE``, ``ITEMS_TABLE``, ``HTTP_SINK_URL``, ``HTTP_SINK_TIMEOUT_S``,
    ``HTTP_SINK_MAX_ATTEMPTS``, ``MAX_CLOCK_SKEW_SECONDS``, plus the runtime's variables."""

    kafka_topics: Annotated[tuple[str, ...], NoDecode] = (
        "dbserver1.public.orders",
        "dbserver1.public.order_items",
    )
    s3_bucket: str = Field(default="cdc-platform-data-lake-dev", min_length=3, max_length=63)
    s3_prefix: str = "reports"
    aws_endpoint_url: str | None = None
    # Tumbling event-time windows of 5 minutes: dashboard granularity, and small enough that
    # a window part of a busy partition stays well under MAX_OPEN_ROWS.
    window_seconds: int = Field(default=300, ge=1, le=86_400)
    # Changes up to a minute late still land in their window; later ones go to the late report.
    grace_seconds: int = Field(default=60, ge=0, le=86_400)
    # Event times are the source database's commit times, from an NTP-synchronised server:
    # real skew is far below a second, so a minute ahead of our clock is already bogus. A
    # change further ahead does not move the watermark (README, "Clocks lie").
    max_clock_skew_seconds: int = Field(default=60, ge=0, le=86_400)
    # A quiet partition's open windows are written after this much wall-clock time without a
    # record, so a stream that stops still reaches the lake within a minute.
    idle_flush_seconds: float = Field(default=60.0, gt=0, le=86_400)
    # Memory bounds per partition: open windows (late bursts, replays of old data) and rows
    # held; reaching either forces a flush.
    max_open_windows: int = Field(default=12, ge=1, le=10_000)
    max_open_rows: int = Field(default=200_000, ge=1)
    # And for the whole process, in estimated bytes of the rows the open windows hold: past it
    # the partition holding the most is flushed; parts still uploading are held to as much
    # (the consumer waits). See DEFAULT_MAX_OPEN_BYTES for the default.
    max_open_bytes: int = Field(default=DEFAULT_MAX_OPEN_BYTES, ge=1)
    top_n: int = Field(default=100, ge=1, le=100_000)
    # Objects are uploaded this many at a time: a PUT costs tens of milliseconds of latency on
    # S3, so a window close of dozens of objects would otherwise stall the batch.
    upload_concurrency: int = Field(default=8, ge=1, le=64)
    # Closed parts are uploaded in the background while the next records are folded; past this
    # many objects queued or in flight, the consumer waits (bounded memory when S3 is slow).
    upload_max_inflight: int = Field(default=64, ge=1, le=10_000)
    jsonl_copy: bool = False
    orders_table: str = "orders"
    items_table: str = "order_items"
    http_sink_url: AnyHttpUrl | None = None
    # The analytics API answers in well under a second; 5 s per attempt bounds a hung call.
    http_sink_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # 5 attempts with 0.5 s doubling backoff: ~7.5 s of retries before the batch is retried by
    # the runtime's own (longer) backoff.
    http_sink_max_attempts: int = Field(default=5, ge=1, le=20)

    # -- the Iceberg tables (README, "Iceberg tables") -------------------------------------------
    # ``sql``: a pyiceberg SQL catalog in PostgreSQL (``LAKE_CATALOG_URI``); ``glue``: the AWS
    # Glue Data Catalog of the account and region (EKS).
    lake_catalog: Literal["sql", "glue"] = "sql"
    # The SQL catalog's database, ``postgresql+psycopg2://user:pass@host:port/db``. With the SQL
    # catalog and no URI, the changes tables are not written (the Parquet reports still are).
    lake_catalog_uri: SecretStr | None = None
    # Where new tables are created: ``s3://<bucket>/<prefix>``; by default the lake's bucket,
    # under ``warehouse``.
    lake_warehouse: str | None = None
    lake_namespace: str = Field(default="analytics", min_length=1, pattern=r"^[A-Za-z0-9_]+$")
    # How often the buffered changes are committed to the Iceberg tables: what a query sees is
    # at most this old (plus one commit). 15 s keeps files and snapshots few (about 6,000
    # snapshots a day per table before expiry) and is well inside a minute of freshness.
    lake_commit_interval_seconds: float = Field(default=15.0, gt=0, le=3600)
    # The report tables are recomputed from the changes tables this often (0: never; ``cdc lake
    # reports`` on demand): a scan of the changes tables each time, so a minute, not seconds.
    lake_reports_interval_seconds: float = Field(default=60.0, ge=0, le=86_400)
    # Compaction and snapshot expiry (``cdc lake maintain``) this often (0: never, e.g. when a
    # CronJob runs the command instead); snapshots older than the retention are expired.
    lake_maintain_interval_seconds: float = Field(default=3600.0, ge=0, le=7 * 86_400)
    lake_snapshot_retention_seconds: float = Field(default=3600.0, ge=0, le=365 * 86_400)
    # The Parquet objects under S3_PREFIX (image and summary reports per window part), the lake
    # before the Iceberg tables: kept as an export only when asked (it costs about a quarter
    # of the flusher's throughput, README "Benchmark: Iceberg tables"), and always written
    # when no catalog is configured.
    lake_parquet_export: bool = False

    @property
    def parquet_enabled(self) -> bool:
        return self.lake_parquet_export or not self.iceberg_enabled

    @property
    def iceberg_enabled(self) -> bool:
        return self.lake_catalog == "glue" or self.lake_catalog_uri is not None

    def catalog_config(self) -> CatalogConfig | None:
        """Where the Iceberg tables are (None: not written, see ``lake_catalog_uri``)."""
        from analytics_flusher.store._iceberg import CatalogConfig

        if not self.iceberg_enabled:
            return None
        uri = self.lake_catalog_uri.get_secret_value() if self.lake_catalog_uri else ""
        return CatalogConfig.from_env(
            uri,
            self.lake_warehouse or f"s3://{self.s3_bucket}/warehouse",
            namespace=self.lake_namespace,
            kind=self.lake_catalog,
            env={
                **os.environ,
                **({"AWS_ENDPOINT_URL": self.aws_endpoint_url} if self.aws_endpoint_url else {}),
            },
        )

    def window_config(self) -> WindowConfig:
        return WindowConfig(
            window_ms=self.window_seconds * 1000,
            grace_ms=self.grace_seconds * 1000,
            max_open_windows=self.max_open_windows,
            max_open_rows=self.max_open_rows,
            max_clock_skew_ms=self.max_clock_skew_seconds * 1000,
        )
