"""Helpers for the flusher's integration tests: run ``python -m analytics_flusher`` as a child
process against the embedded stack, read the lake back, compare it with the ground truth."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from analytics_flusher import verify
from devstack import AwsEmulator, DebeziumRelay, ManagedProcess, PostgresServer, free_port

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
    """The test's bucket, read back through a local mirror (only new objects are fetched)."""

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

    def __init__(self, tmp_path: Path, bootstrap: str, aws: AwsEmulator, bucket: str) -> None:
        self.tmp_path = tmp_path
        self.bootstrap = bootstrap
        self.aws = aws
        self.bucket = bucket
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
) -> Iterator[Flushers]:
    s3 = aws_emulator.client("s3")
    s3.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    kit = Flushers(tmp_path, kafka_bootstrap, aws_emulator, s3_bucket)
    yield kit
    for proc in kit.started:
        proc.kill()
    # Versioned objects are not removed by the bucket fixture's plain deletes.
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=s3_bucket):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=s3_bucket, Key=v["Key"], VersionId=v["VersionId"])


@pytest.fixture
def lake(aws_emulator: AwsEmulator, s3_bucket: str, tmp_path: Path) -> Lake:
    return Lake(aws_emulator.client("s3"), s3_bucket, tmp_path / "mirror")


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
    def converge(lake: Lake, source: PostgresServer, timeout: float = 90.0) -> dict[str, Any]:
        """Wait until the lake's totals equal the source's; fail with a readable diff."""
        expected = source_truth(source)
        deadline = time.monotonic() + timeout
        actual: dict[str, Any] = {}
        while time.monotonic() < deadline:
            actual = lake.totals()
            if actual == expected:
                return expected
            time.sleep(1.0)
        raise AssertionError("lake totals differ from the source:\n" + diff(expected, actual))


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
