"""A pattern subscription picks up a topic created after the consumer started (a new table's
first change) within ``KAFKA_PATTERN_REFRESH_MS``, not at librdkafka's 5-minute default."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from consumer_runtime import (
    BaseSink,
    Batch,
    CommitStrategy,
    Message,
    Offsets,
    Runtime,
    RuntimeSettings,
)
from consumer_runtime.testing import run_until
from devstack import produce


class TopicsSeen(BaseSink[str]):
    def __init__(self, wanted: str) -> None:
        self.topics: set[str] = set()
        self.wanted = wanted
        self.done = threading.Event()

    def write_batch(self, batch: Batch[str]) -> Offsets | None:
        self.topics.update(batch)
        if self.wanted in self.topics:
            self.done.set()
        return None


def _topic_of(message: Message) -> str:
    return message.topic() or ""


def test_a_topic_created_after_the_start_is_consumed_within_the_refresh(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique_id: str
) -> None:
    prefix = f"pattern{unique_id}"
    first = make_topic(1, name=f"{prefix}.public.orders")
    produce(kafka_bootstrap, first, [(b"1", b"{}")])
    late = f"{prefix}.public.refunds"
    sink = TopicsSeen(late)
    settings = RuntimeSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topics=(f"^{prefix}\\.public\\..*",),
        kafka_group_id=f"pattern-{unique_id}",
        kafka_pattern_refresh_ms=1000,
        kafka_consumer_extra={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
        batch_max_wait_ms=100,
        health_port=0,
    )
    runtime: Runtime[str] = Runtime(
        "pattern-it", settings, _topic_of, sink, CommitStrategy.COMMIT_AFTER_FLUSH
    )
    created: dict[str, Any] = {}

    def create_late_topic() -> None:
        # Once the first topic is being consumed: the subscription is live without the new one.
        deadline = time.monotonic() + 60
        while first not in sink.topics and time.monotonic() < deadline:
            time.sleep(0.05)
        make_topic(1, name=late)
        produce(kafka_bootstrap, late, [(b"2", b"{}")])
        created["at"] = time.monotonic()

    helper = threading.Thread(target=create_late_topic, daemon=True)
    helper.start()
    # Well under librdkafka's default 5-minute refresh; the rebalance to add it takes seconds.
    assert run_until(runtime, sink.done, timeout_s=60), f"only saw {sorted(sink.topics)}"
    helper.join(5)
    assert first in sink.topics and late in sink.topics
    assert time.monotonic() - created["at"] < 45
