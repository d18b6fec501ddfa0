"""Small producer/reader helpers for tests and tools (not the services' consumer runtime)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    *,
    partition: int | None = None,
    one_per_batch: bool = False,
    headers: Sequence[tuple[str, bytes]] | None = None,
) -> int:
    """Produce (key, value) pairs and wait until the broker acknowledged all of them."""
    config: dict[str, str | int | bool] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
    }
    if one_per_batch:
        # tansu reports the high watermark as the base offset of the partition's last batch + 1
        # (libs/devstack/README.md, "Facts"); one record per batch keeps lag exact in tests.
        config.update({"batch.num.messages": 1, "linger.ms": 0, "max.in.flight": 1})
    producer = Producer(config)
    errors: list[str] = []
    count = 0

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    for key, value in records:
        kwargs: dict[str, object] = {"key": key, "value": value, "on_delivery": on_delivery}
        if partition is not None:
            kwargs["partition"] = partition
        if headers:
            kwargs["headers"] = list(headers)
        while True:
            try:
                producer.produce(topic, **kwargs)  # type: ignore[arg-type]
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        if one_per_batch:
            producer.flush(10)
    if producer.flush(60) or errors:
        raise RuntimeError(f"produce to {topic} failed: {errors[:3]}")
    return count


def _headers(raw: object) -> tuple[tuple[str, bytes], ...]:
    out: list[tuple[str, bytes]] = []
    for item in raw or []:  # type: ignore[attr-defined]
        name, value = item
        out.append((str(name), value if isinstance(value, bytes) else str(value or "").encode()))
    return tuple(out)


def reader_consumer(bootstrap: str, group_id: str) -> Consumer:
    """A consumer for reading topics with ``assign`` (no group join), from the beginning, that
    never commits: the devstack's readers observe the topics, they do not consume them."""
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


def read_topic(
    bootstrap: str,
    topics: str | Sequence[str],
    *,
    expected: int | None = None,
    timeout: float = 30.0,
    idle: float = 2.0,
) -> list[Record]:
    """Read topics from the beginning, without a consumer group (``assign``, no join wait).

    Returns once ``expected`` records were read, or once nothing new arrived for ``idle``
    seconds (when ``expected`` is None), or at ``timeout``.
    """
    names = [topics] if isinstance(topics, str) else list(topics)
    consumer = reader_consumer(bootstrap, "devstack-reader")
    deadline = time.monotonic() + timeout
    try:
        # A CDC topic appears with its first change: wait for every topic to exist.
        while True:
            metadata = consumer.list_topics(timeout=10)
            if all(n in metadata.topics and not metadata.topics[n].error for n in names):
                break
            if time.monotonic() > deadline:
                return []
            time.sleep(0.1)
        assignment = [
            TopicPartition(name, p, 0)  # offset 0: from the beginning
            for name in names
            for p in metadata.topics[name].partitions
        ]
        consumer.assign(assignment)
        out: list[Record] = []
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            if expected is not None and len(out) >= expected:
                break
            if expected is None and time.monotonic() - last_new > idle:
                break
            for msg in consumer.consume(1000, 0.2):
                if msg.error():
                    continue
                last_new = time.monotonic()
                ts = msg.timestamp()[1]
                out.append(
                    Record(
                        topic=msg.topic() or "",
                        partition=msg.partition() or 0,
                        offset=msg.offset() or 0,
                        key=msg.key(),
                        value=msg.value(),
                        headers=_headers(msg.headers()),
                        timestamp_ms=ts,
                    )
                )
        return out
    finally:
        consumer.close()
