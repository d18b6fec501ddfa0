"""Helpers for the runtime's integration tests: spawn the child consumer, read its results."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from devstack import ManagedProcess, free_port

CHILD = Path(__file__).with_name("consumer_child.py")

# tansu: a group join waits for the session timeout of departed members; short keeps tests fast.
GROUP_TIMEOUTS = '{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}'


def payloads(n: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    return [
        (str(i).encode(), orjson.dumps({"id": i, "pad": "x" * 50})) for i in range(start, start + n)
    ]


def file_ids(path: Path) -> list[int]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 4:  # a SIGKILL cannot tear an fsynced line, but be safe
            out.append(int(parts[3]))
    return out


def wait_until(cond: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        result = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
        return {tp.partition: tp.offset for tp in result}
    finally:
        consumer.close()


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def spawn_consumer(
    tmp_path: Path, kafka_bootstrap: str
) -> Iterator[Callable[..., tuple[ManagedProcess, int]]]:
    """``spawn_consumer(name, topic, group, **env)`` starts the child; returns it and its port."""
    started: list[ManagedProcess] = []

    def _spawn(name: str, topic: str, group: str, **env: str) -> tuple[ManagedProcess, int]:
        port = free_port()
        full_env = {
            "PATH": "/usr/bin:/bin",
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPICS": topic,
            "KAFKA_GROUP_ID": group,
            "KAFKA_CONSUMER_EXTRA": GROUP_TIMEOUTS,
            "HEALTH_PORT": str(port),
            "SERVICE_NAME": "child",
            "BATCH_MAX_WAIT_MS": "100",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        proc = ManagedProcess(
            name, [sys.executable, str(CHILD)], tmp_path / f"{name}.log", env=full_env
        )
        proc.start()
        started.append(proc)
        return proc, port

    yield _spawn
    for proc in started:
        proc.kill()


class Kit:
    """The helpers above, handed to tests as a fixture (test modules cannot import conftest)."""

    payloads = staticmethod(payloads)
    file_ids = staticmethod(file_ids)
    wait_until = staticmethod(wait_until)
    committed = staticmethod(committed)
    http_get = staticmethod(http_get)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
