"""The embedded broker's consumer groups: how long a service waits before it gets partitions."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer
from devstack._broker import GROUP_SETTINGS
from devstack._pipeline import Pipeline

# With librdkafka's default session timeout the embedded broker answered a new member's first
# join after 23 s; with the pipeline's settings after about 5 s. The budget sits between, wide
# enough for a loaded machine (a functional bound, not a benchmark).
JOIN_BUDGET_S = 15.0


def _seconds_to_assignment(
    bootstrap: str, topic: str, group: str, extra: dict[str, object]
) -> float:
    assigned: list[float] = []
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "partition.assignment.strategy": "cooperative-sticky",
            **extra,
        }
    )
    started = time.monotonic()
    consumer.subscribe([topic], on_assign=lambda _c, _p: assigned.append(time.monotonic()))
    try:
        while not assigned and time.monotonic() - started < 60:
            consumer.poll(0.1)
    finally:
        consumer.close()
    assert assigned, "no partitions within 60 s"
    return assigned[0] - started


def test_the_pipeline_s_services_join_their_groups_within_seconds(
    kafka_bootstrap: str, make_topic: Callable[..., str], kafka_group: str, tmp_path: Path
) -> None:
    settings = Pipeline(tmp_path).consumer_extra
    seconds = _seconds_to_assignment(kafka_bootstrap, make_topic(3), kafka_group, settings)
    assert seconds < JOIN_BUDGET_S, f"first assignment after {seconds:.1f}s"


def test_chaos_s_own_session_timeout_wins_over_the_default(tmp_path: Path) -> None:
    extra = Pipeline(tmp_path, consumer_extra={"session.timeout.ms": 7000}).consumer_extra
    assert extra["session.timeout.ms"] == 7000
    assert extra["heartbeat.interval.ms"] == GROUP_SETTINGS["heartbeat.interval.ms"]
