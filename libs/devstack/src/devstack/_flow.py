"""Counting what reached the broker: a group-less reader over the CDC topics and ``user-events``
that tallies records per topic and Debezium op, for the live view and the end-of-run check."""

from __future__ import annotations

import threading
import time
from collections import Counter

import orjson
from confluent_kafka import KafkaException, TopicPartition

from devstack._kafka_io import reader_consumer

# Re-read topic metadata this often: CDC topics appear with their table's first change.
_METADATA_INTERVAL_S = 1.0


def op_of(value: bytes | None) -> str:
    """``c``/``u``/``d``/``r``/``t``/``m`` of a Debezium JSON record, ``tombstone`` or ``other``."""
    if value is None:
        return "tombstone"
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return "other"
    if not isinstance(doc, dict):
        return "other"
    payload = doc.get("payload", doc)
    if isinstance(payload, dict) and isinstance(payload.get("op"), str):
        return str(payload["op"])
    return "other"


class FlowMonitor(threading.Thread):
    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        super().__init__(name="flow-monitor", daemon=True)
        self.bootstrap = bootstrap
        self.topics = topics
        self.counts: dict[str, Counter[str]] = {t: Counter() for t in topics}
        self.last_seen: dict[str, float] = {}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, Counter[str]]:
        with self._lock:
            return {t: Counter(c) for t, c in self.counts.items()}

    def total(self, topic: str) -> int:
        with self._lock:
            return sum(self.counts[topic].values())

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

    def run(self) -> None:
        consumer = reader_consumer(self.bootstrap, "devstack-flow-monitor")
        assigned: set[tuple[str, int]] = set()
        next_metadata = 0.0
        try:
            while not self._stop_event.is_set():
                if time.monotonic() >= next_metadata:
                    next_metadata = time.monotonic() + _METADATA_INTERVAL_S
                    try:
                        metadata = consumer.list_topics(timeout=5)
                    except KafkaException:
                        continue  # the broker is paused or restarting: ask again next time
                    new = [
                        TopicPartition(t, p, 0)  # from the beginning
                        for t in self.topics
                        if t in metadata.topics
                        for p in metadata.topics[t].partitions
                        if (t, p) not in assigned
                    ]
                    if new:
                        consumer.incremental_assign(new)
                        assigned.update((tp.topic, tp.partition) for tp in new)
                messages = consumer.consume(2000, 0.2)
                if not messages:
                    continue
                with self._lock:
                    for msg in messages:
                        if msg.error():
                            continue
                        topic = msg.topic() or ""
                        self.counts[topic][op_of(msg.value())] += 1
                        self.last_seen[topic] = time.time()
        finally:
            consumer.close()
