"""Helpers for the flusher's integration tests: run ``python -m analytics_flusher`` as a child
process against the embedded stack, read the lake back, compare it with the ground truth; and
the Iceberg catalog of a test (``iceberg``: its tables in a private schema of the sink
PostgreSQL, its warehouse in the test's bucket on the AWS emulator)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from analytics_flusher import ItemChange, verify
from analytics_flusher.report_queries import REPORT_SUMS
from analytics_flusher.store._iceberg import (
    ITEMS_CHANGES,
    ORDERS_CHANGES,
    CatalogConfig,
    ExactlyOnceCommitter,
    ensure_changes_tables,
    item_rows,
    open_catalog,
)
from devstack import AwsEmulator, DebeziumRelay, ManagedProcess, PostgresServer, free_port
from devstack.pytest_plugin import SinkSchema
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

TOPICS = "dbserver1.public.orders,dbserver1.public.order_items"
# tansu: a group join waits for the session timeout of departed members; short keeps tests fast.
# The CDC topics appear only when Debezium first writes to them: refresh metadata every 2 s so a
# flusher started before that picks them up quickly (librdkafka's default is 5 minutes).
CONSUMER_EXTRA = (
    '{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,'
    ' "topic.metadata.refresh.interval.ms": 2000}'
)
CENTS = Decimal("0.01")


class Lake(verify.Lake):
    """The test's bucket, read back through a local mirror (only new objects are fetched), and
    the test's Iceberg changes tables."""

    def __init__(self, *args: Any, iceberg: CatalogConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.iceberg = iceberg

    def iceberg_totals(self) -> dict[str, Any]:
        return verify.iceberg_totals(self.iceberg)

    def report_totals(self) -> dict[str, Any]:
        """The report tables summed (windows of 3 s, as the flushers' ``WINDOW_SECONDS``)."""
        return verify.report_totals(self.iceberg, window_ms=3000)

    def iceberg_offsets(self) -> dict[str, list[tuple[int, int]]]:
        """Per changes table, the (partition, offset) of every row, sorted (duplicates kept)."""
        catalog = open_catalog(self.iceberg)
        out = {}
        for name in (ORDERS_CHANGES, ITEMS_CHANGES):
            rows = catalog.load_table((self.iceberg.namespace, name)).scan().to_arrow()
            pairs = zip(
                rows.column("kafka_partition").to_pylist(),
                rows.column("kafka_offset").to_pylist(),
                strict=True,
            )
            out[name] = sorted(pairs)
        return out

    def assert_iceberg_exactly_once(self) -> int:
        """No (partition, offset) twice in a changes table; returns the rows."""
        total = 0
        for name, pairs in self.iceberg_offsets().items():
            doubled = len(pairs) - len(set(pairs))
            assert not doubled, f"{name}: {doubled} changes written twice"
            total += len(pairs)
        return total

    def assert_rewrites_identical(self) -> int:
        """Every key written more than once holds the same bytes each time; returns how many."""
        versions = self.versions()
        differing = {k: e for k, e in versions.items() if len(set(e)) > 1}
        assert not differing, f"keys rewritten with different bytes: {sorted(differing)[:5]}"
        return sum(1 for e in versions.values() if len(e) > 1)


def source_truth(source_postgres: PostgresServer) -> dict[str, Any]:
    conn = source_postgres.connect("shop")
    try:
        return verify.expected(conn)
    finally:
        conn.close()


def diff(expected: dict[str, Any], actual: dict[str, Any]) -> str:
    lines = []
    for name, exp in expected.items():
        got = actual.get(name, {})
        for key in sorted(set(exp) | set(got), key=str):
            if exp.get(key) != got.get(key):
                lines.append(f"{name}[{key}]: source={exp.get(key)} lake={got.get(key)}")
    return "\n".join(lines[:20]) or "(equal)"


class Flushers:
    """Start/stop flusher child processes of one test; all are killed at teardown."""

    def __init__(
        self,
        tmp_path: Path,
        bootstrap: str,
        aws: AwsEmulator,
        bucket: str,
        catalog: CatalogConfig | None = None,
    ) -> None:
        self.tmp_path = tmp_path
        self.bootstrap = bootstrap
        self.aws = aws
        self.bucket = bucket
        # The Iceberg catalog every flusher of the test writes its changes tables to.
        self.catalog = catalog
        self.started: list[ManagedProcess] = []

    def start(self, name: str, group: str, **env: str) -> ManagedProcess:
        full_env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONUNBUFFERED": "1",
            **self.aws.env,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_TOPICS": TOPICS,
            "KAFKA_GROUP_ID": group,
            "KAFKA_CONSUMER_EXTRA": CONSUMER_EXTRA,
            "HEALTH_PORT": str(free_port()),
            "S3_BUCKET": self.bucket,
            # Short windows so a test run of seconds closes several of them on the watermark.
            "WINDOW_SECONDS": "3",
            "GRACE_SECONDS": "1",
            "IDLE_FLUSH_SECONDS": "2",
            "BATCH_MAX_WAIT_MS": "200",
            "RETRY_MAX_S": "2",
            "LOG_FORMAT": "console",
            **(
                {
                    "LAKE_CATALOG_URI": self.catalog.uri,
                    "LAKE_WAREHOUSE": self.catalog.warehouse,
                    "LAKE_NAMESPACE": self.catalog.namespace,
                    "LAKE_COMMIT_INTERVAL_SECONDS": "2",
                    # The verifier materializes the report tables itself; the flushers'
                    # own schedule is tested where it is the subject (the e2e test).
                    "LAKE_REPORTS_INTERVAL_SECONDS": "0",
                    # Both lakes, compared with the source by the same tests; a test of the
                    # tables alone passes LAKE_PARQUET_EXPORT="false".
                    "LAKE_PARQUET_EXPORT": "true",
                }
                if self.catalog is not None
                else {}
            ),
            **env,
        }
        proc = ManagedProcess(
            name,
            [sys.executable, "-m", "analytics_flusher"],
            self.tmp_path / f"{name}.log",
            env=full_env,
        )
        proc.start()
        self.started.append(proc)
        return proc


@pytest.fixture
def flushers(
    tmp_path: Path,
    kafka_bootstrap: str,
    aws_emulator: AwsEmulator,
    s3_bucket: str,
    debezium_relay: DebeziumRelay,
    iceberg_config: CatalogConfig,
) -> Iterator[Flushers]:
    s3 = aws_emulator.client("s3")
    s3.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    kit = Flushers(tmp_path, kafka_bootstrap, aws_emulator, s3_bucket, iceberg_config)
    yield kit
    for proc in kit.started:
        proc.kill()
    # Versioned objects are not removed by the bucket fixture's plain deletes; a thousand a
    # request (the Iceberg tables' files are many).
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=s3_bucket):
        versions = page.get("Versions", []) + page.get("DeleteMarkers", [])
        for start in range(0, len(versions), 1000):
            chunk = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in versions[start : start + 1000]
            ]
            s3.delete_objects(Bucket=s3_bucket, Delete={"Objects": chunk, "Quiet": True})


@pytest.fixture
def lake(
    aws_emulator: AwsEmulator, s3_bucket: str, tmp_path: Path, iceberg_config: CatalogConfig
) -> Lake:
    return Lake(aws_emulator.client("s3"), s3_bucket, tmp_path / "mirror", iceberg=iceberg_config)


class Background:
    """Run the simulator in a thread while the test kills, pauses or adds flushers."""

    def __init__(self, target: Callable[[], Any]) -> None:
        self.thread = threading.Thread(target=target, daemon=True)

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join()


def wait_for_write(proc: ManagedProcess, after: int = 0, timeout: float = 40.0) -> int:
    """Wait until ``proc`` logged more than ``after`` written window parts; returns the count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = proc.log_path.read_text(errors="replace").count("window part written")
        if n > after:
            return n
        time.sleep(0.2)
    raise AssertionError(f"{proc.name} wrote nothing within {timeout}s:\n{proc.log_tail()}")


class Kit:
    """The helpers above, handed to tests as a fixture (test modules cannot import conftest)."""

    source_truth = staticmethod(source_truth)
    wait_for_write = staticmethod(wait_for_write)
    diff = staticmethod(diff)
    Background = Background

    @staticmethod
    def converge(
        lake: Lake, source: PostgresServer, timeout: float = 90.0, *, parquet: bool = True
    ) -> dict[str, Any]:
        """Wait until the lake's totals equal the source's: from the Parquet images (unless
        ``parquet`` is False: the flushers export none), from the Iceberg changes tables and
        from the report tables summed; fail with a readable diff."""
        expected = source_truth(source)
        reported = {k: expected[k] for k in REPORT_SUMS}
        deadline = time.monotonic() + timeout
        reads = [
            ("Iceberg", lake.iceberg_totals, expected),
            ("report tables", lake.report_totals, reported),
        ]
        if parquet:
            reads.insert(0, ("lake", lake.totals, expected))
        for what, read, want in reads:
            actual: dict[str, Any] = {}
            while time.monotonic() < deadline:
                actual = read()
                if actual == want:
                    break
                time.sleep(1.0)
            else:
                raise AssertionError(
                    f"{what} totals differ from the source:\n" + diff(want, actual)
                )
        return expected


@pytest.fixture
def kit() -> type[Kit]:
    return Kit


# -- Iceberg ----------------------------------------------------------------------------------

ITEMS_TOPIC = "dbserver1.public.order_items"
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


class StallingCatalog(SqlCatalog):
    """The real catalog, whose first ``commit_table`` stops before committing: it sets
    ``entered`` and waits for ``release``. ``commits`` counts the calls (every attempt of a
    transaction reaches the catalog through it)."""

    def __init__(self, name: str, **properties: str) -> None:
        super().__init__(name, **properties)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.commits = 0

    def commit_table(self, table: Any, requirements: Any, updates: Any) -> Any:
        self.commits += 1
        if self.commits == 1:
            self.entered.set()
            assert self.release.wait(60), "the test never released the stalled commit"
        return super().commit_table(table, requirements, updates)


class Iceberg:
    """A test's catalog: writers (each its own catalog connection, as separate members are),
    rows of ``order_items_changes`` and what the table and the bucket hold."""

    def __init__(self, config: CatalogConfig, aws: AwsEmulator, bucket: str) -> None:
        self.config = config
        self.aws_env = aws.env
        self.s3 = aws.client("s3")
        self.bucket = bucket
        ensure_changes_tables(open_catalog(config), config.namespace)

    def writer(self) -> ExactlyOnceCommitter:
        return ExactlyOnceCommitter(open_catalog(self.config), self.config.namespace)

    def stalling_writer(self) -> tuple[ExactlyOnceCommitter, StallingCatalog]:
        catalog = StallingCatalog(self.config.name, **self.config.properties())
        return ExactlyOnceCommitter(catalog, self.config.namespace), catalog

    @staticmethod
    def items(partition: int, offsets: Sequence[int], quantity: int = 1) -> pa.Table:
        """One ``order_items`` creation per offset: item id = partition * 1,000,000 + offset."""
        return item_rows(
            partition,
            [
                ItemChange(
                    item_id=partition * 1_000_000 + offset,
                    order_id=offset // 3 + 1,
                    product_id=offset % 7 + 1,
                    quantity=quantity,
                    unit_price=Decimal("2.50"),
                    deleted=False,
                    op="c",
                    source_ts_ms=T0_MS + offset * 1000,
                    offset=offset,
                    version=f"q{offset:061d}",
                    event_id=f"{partition}-{offset}",
                )
                for offset in offsets
            ],
        )

    def table(self, name: str = ITEMS_CHANGES) -> Table:
        return open_catalog(self.config).load_table((self.config.namespace, name))

    def rows(self) -> list[tuple[int, int, int]]:
        """(partition, offset, quantity) of every row of ``order_items_changes``, sorted."""
        scanned = self.table().scan().to_arrow()
        columns = ("kafka_partition", "kafka_offset", "quantity")
        return sorted(zip(*(scanned.column(c).to_pylist() for c in columns), strict=True))

    def orphans(self, name: str = ITEMS_CHANGES) -> set[str]:
        """Data files in the bucket that no snapshot of the table refers to."""
        table = self.table(name)
        referenced = {
            entry.data_file.file_path
            for snapshot in table.snapshots()
            for manifest in snapshot.manifests(table.io)
            for entry in manifest.fetch_manifest_entry(table.io)
        }
        prefix = f"{table.metadata.location.removeprefix(f's3://{self.bucket}/')}/data/"
        stored = {
            f"s3://{self.bucket}/{obj['Key']}"
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for obj in page.get("Contents", [])
            if not obj["Key"].endswith("/")  # pyarrow's directory markers
        }
        return stored - referenced


@pytest.fixture
def iceberg_config(
    sink_schema: SinkSchema, s3_bucket: str, aws_emulator: AwsEmulator
) -> CatalogConfig:
    """A catalog nothing has been created in yet (no catalog tables, no namespace)."""
    return CatalogConfig.from_env(
        sink_schema.url, f"s3://{s3_bucket}/warehouse", env=aws_emulator.env
    )


@pytest.fixture
def iceberg(iceberg_config: CatalogConfig, s3_bucket: str, aws_emulator: AwsEmulator) -> Iceberg:
    """The same catalog with its namespace and changes tables."""
    return Iceberg(iceberg_config, aws_emulator, s3_bucket)


@pytest.fixture
def glue_config(
    s3_bucket: str, aws_emulator: AwsEmulator, unique_id: str
) -> Iterator[CatalogConfig]:
    """A Glue catalog on the emulator (moto's Glue) whose database, the test's own namespace,
    does not exist yet; its tables and the database are dropped at teardown (the emulator
    serves the whole session)."""
    namespace = f"lake_{unique_id}"
    yield CatalogConfig.from_env(
        "", f"s3://{s3_bucket}/warehouse", namespace=namespace, kind="glue", env=aws_emulator.env
    )
    glue = aws_emulator.client("glue")
    try:
        for page in glue.get_paginator("get_tables").paginate(DatabaseName=namespace):
            for table in page["TableList"]:
                glue.delete_table(DatabaseName=namespace, Name=table["Name"])
        glue.delete_database(Name=namespace)
    except glue.exceptions.EntityNotFoundException:
        pass


@pytest.fixture
def glue_iceberg(glue_config: CatalogConfig, s3_bucket: str, aws_emulator: AwsEmulator) -> Iceberg:
    """The Glue catalog with its database and changes tables."""
    return Iceberg(glue_config, aws_emulator, s3_bucket)
