"""Each test gets its own schema, topic, group and bucket on the shared session servers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg2
from devstack import AwsEmulator, PostgresServer, produce, read_topic
from devstack.pytest_plugin import SinkSchema


def test_sink_schema_is_private_and_first_on_the_search_path(
    sink_schema: SinkSchema, sink_postgres: PostgresServer
) -> None:
    conn = psycopg2.connect(sink_schema.dsn)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (x int)")  # unqualified: lands in the test's schema
        cur.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = 't'")
        assert cur.fetchall() == [(sink_schema.schema,)]
    conn.close()


def test_topics_are_fresh_and_distinct(
    make_topic: Callable[..., str], kafka_bootstrap: str
) -> None:
    first, second = make_topic(2), make_topic(1)
    assert first != second
    produce(kafka_bootstrap, first, [(b"k", b"v1"), (b"k", b"v2")])
    assert [r.value for r in read_topic(kafka_bootstrap, first, expected=2)] == [b"v1", b"v2"]
    assert read_topic(kafka_bootstrap, second, timeout=3, idle=1) == []


def test_bucket_is_fresh_and_in_the_emulator(s3_bucket: str, aws_emulator: AwsEmulator) -> None:
    s3 = aws_emulator.client("s3")
    assert s3.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0
    s3.put_object(Bucket=s3_bucket, Key="a", Body=b"x")
    assert s3.get_object(Bucket=s3_bucket, Key="a")["Body"].read() == b"x"


def test_kafka_group_and_unique_id_differ_per_test(kafka_group: str, unique_id: str) -> None:
    assert unique_id in kafka_group


def test_postgresql_survives_another_pytest_session_on_the_machine(
    devstack_dir: Path, tmp_path: Path
) -> None:
    """Every pytest session makes ``/tmp/pytest-of-<user>`` private (0700). PostgreSQL runs as
    its own user, so a data directory under it became unreachable as soon as another session
    started: a restart failed and a running server shut down at its next lock-file check. The
    stack's directory is outside pytest's."""
    server = PostgresServer("other-session", devstack_dir).start()
    try:
        other = tmp_path / "other"
        other.mkdir()
        (other / "test_other.py").write_text("def test_tmp(tmp_path):\n    assert tmp_path\n")
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
            cwd=other,
            check=True,
            capture_output=True,
            timeout=120,
        )
        server.restart()
        conn = server.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        conn.close()
    finally:
        server.stop()
