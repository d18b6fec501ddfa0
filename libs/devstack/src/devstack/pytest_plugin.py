"""pytest fixtures for the embedded stack (registered through the ``pytest11`` entry point).

Servers are session-scoped on free ports and started only when a test asks for them; each test
gets its own topic, consumer group, database schema, bucket or source table, so tests never see
each other's data. Every server is stopped in a finalizer, and dies with the test process in any
case (see ``devstack._proc``), so a failing or interrupted session leaves no process behind.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack._aws import AwsEmulator
from devstack._broker import Broker
from devstack._postgres import PostgresServer
from devstack._relay import DebeziumRelay
from devstack._shop import install_schema
from devstack.simulator import ShopSimulator

SOURCE_DATABASE = "shop"
TOPIC_PREFIX = "dbserver1"


@dataclass(frozen=True)
class SinkSchema:
    """A private schema in the sink database for one test."""

    server: PostgresServer
    database: str
    schema: str

    @property
    def url(self) -> str:
        """SQLAlchemy URL whose connections use this schema first on the search path."""
        return (
            f"{self.server.url(self.database, driver='postgresql+psycopg2')}"
            f"?options=-csearch_path%3D{self.schema}"
        )

    @property
    def dsn(self) -> str:
        return f"{self.server.dsn(self.database)} options='-csearch_path={self.schema}'"


def _uid() -> str:
    return uuid.uuid4().hex[:10]


def _outside_pytest(failed: Callable[[], bool], what: str) -> Iterator[Path]:
    """A directory outside pytest's ``/tmp/pytest-of-<user>``: every pytest session started on
    the machine makes that directory private (0700) again, and PostgreSQL, which runs as its
    own user, then lost its data directory (a restart failed, a running server shut down).
    Removed afterwards if nothing failed; kept, and named, otherwise."""
    path = Path(tempfile.mkdtemp(prefix="devstack-"))
    yield path
    if failed():
        print(f"\ndevstack: {what} files are kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def devstack_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The session's servers' directory (``_outside_pytest``)."""
    yield from _outside_pytest(lambda: bool(request.session.testsfailed), "the session's servers'")


@pytest.fixture
def stack_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A test's own stack's work directory (``_outside_pytest``), for a test that starts a
    whole stack (``cdc dev up``, a chaos run) rather than using the session's servers."""
    before = request.session.testsfailed
    yield from _outside_pytest(
        lambda: request.session.testsfailed > before, f"{request.node.name}'s stack"
    )


@pytest.fixture(scope="session")
def kafka_broker(devstack_dir: Path) -> Iterator[Broker]:
    broker = Broker(devstack_dir).start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker) -> str:
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def sink_postgres(devstack_dir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer("sink", devstack_dir).start()
    server.create_database("sink")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def source_postgres(devstack_dir: Path) -> Iterator[PostgresServer]:
    """The shop's OLTP database: ``wal_level=logical`` on TCP, database ``shop``, shop schema."""
    server = PostgresServer("source", devstack_dir, logical=True).start()
    server.create_database(SOURCE_DATABASE)
    conn = server.connect(SOURCE_DATABASE)
    try:
        install_schema(conn)
    finally:
        conn.close()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def aws_emulator(devstack_dir: Path) -> Iterator[AwsEmulator]:
    emulator = AwsEmulator(devstack_dir).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def aws_env(aws_emulator: AwsEmulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point boto3 in this process at the emulator (``AWS_ENDPOINT_URL``, region, test keys)."""
    for key, value in aws_emulator.env.items():
        monkeypatch.setenv(key, value)
    return aws_emulator.env


@pytest.fixture(scope="session")
def debezium_relay(
    devstack_dir: Path, kafka_broker: Broker, source_postgres: PostgresServer
) -> Iterator[DebeziumRelay]:
    """The real Debezium connector on the shop database, topics ``dbserver1.public.<table>``.

    One per session (the JVM is slow to start); tests isolate themselves with their own
    tables (``source_table``). Transaction metadata and 1 s heartbeats are on.
    """
    relay = DebeziumRelay.create(
        devstack_dir / "relay",
        bootstrap_servers=kafka_broker.bootstrap,
        db_port=source_postgres.port,
        db_name=SOURCE_DATABASE,
        topic_prefix=TOPIC_PREFIX,
        provide_transaction_metadata=True,
        heartbeat_interval_ms=1000,
    ).start()
    yield relay
    relay.stop()


@pytest.fixture(scope="session")
def activity_log(devstack_dir: Path) -> Path:
    """The session's log of every user event acknowledged on ``user-events`` (all tests)."""
    return devstack_dir / "user-events.jsonl"


@pytest.fixture
def shop_simulator(
    source_postgres: PostgresServer, kafka_broker: Broker, activity_log: Path
) -> Iterator[ShopSimulator]:
    """A simulator on the session's shop database and ``user-events`` topic (seed printed).

    Every test's changes accumulate in the same tables and topics, so a consumer reading from
    the beginning must end equal to the ground truth of the whole session.
    """
    sim = ShopSimulator(
        source_postgres.dsn(SOURCE_DATABASE), kafka_broker.bootstrap, activity_log=activity_log
    )
    print(f"shop simulator seed={sim.seed}")
    yield sim
    sim.close()


@pytest.fixture
def unique_id() -> str:
    return _uid()


@pytest.fixture
def kafka_group(unique_id: str) -> str:
    return f"group-{unique_id}"


@pytest.fixture
def make_topic(kafka_broker: Broker) -> Callable[..., str]:
    """``make_topic(partitions=1, name=None)`` creates a fresh topic and returns its name."""

    def _make(partitions: int = 1, name: str | None = None) -> str:
        topic = name or f"topic-{_uid()}"
        kafka_broker.create_topics([topic], partitions)
        return topic

    return _make


@pytest.fixture
def kafka_topic(make_topic: Callable[..., str]) -> str:
    """A fresh 3-partition topic."""
    return make_topic(3)


@pytest.fixture
def sink_schema(sink_postgres: PostgresServer, unique_id: str) -> Iterator[SinkSchema]:
    schema = f"t_{unique_id}"
    conn = sink_postgres.connect("sink")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    yield SinkSchema(sink_postgres, "sink", schema)
    with conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    conn.close()


@pytest.fixture
def s3_bucket(aws_emulator: AwsEmulator, unique_id: str) -> Iterator[str]:
    s3: Any = aws_emulator.client("s3")
    bucket = f"bucket-{unique_id}"
    s3.create_bucket(Bucket=bucket)
    yield bucket
    # Every version and delete marker too: a test may turn versioning on.
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for obj in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"], VersionId=obj["VersionId"])
    s3.delete_bucket(Bucket=bucket)


@pytest.fixture
def source_table(source_postgres: PostgresServer, unique_id: str) -> Iterator[Callable[[str], str]]:
    """``source_table("id serial PRIMARY KEY, name text")`` creates ``public.src_<id>`` in the
    shop database and returns its name; the relay's publication covers it at once."""
    created: list[str] = []

    def _make(columns: str, suffix: str = "") -> str:
        name = f"src_{unique_id}{suffix}"
        conn = source_postgres.connect(SOURCE_DATABASE)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE public.{name} ({columns})")
        conn.close()
        created.append(name)
        return name

    yield _make
    conn = source_postgres.connect(SOURCE_DATABASE)
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in created:
            cur.execute(f"DROP TABLE IF EXISTS public.{name}")
    conn.close()
