from __future__ import annotations

import pytest
from consumer_runtime import OutgoingRecord, RetryableError, RuntimeSettings, create_publisher
from devstack import Broker, read_topic


def test_publisher_returns_after_the_broker_acknowledged(
    kafka_broker: Broker, make_topic: object, unique_id: str
) -> None:
    topic = make_topic(2)  # type: ignore[operator]
    settings = RuntimeSettings(kafka_bootstrap_servers=kafka_broker.bootstrap, kafka_topics=("x",))
    publisher = create_publisher(settings, "svc")
    publisher.send(
        topic, [OutgoingRecord(b"p1", b"a", (("h", b"1"),)), OutgoingRecord(b"p2", b"b")]
    )
    publisher.close()
    records = read_topic(kafka_broker.bootstrap, topic, expected=2)
    assert sorted((r.key, r.value) for r in records) == [(b"p1", b"a"), (b"p2", b"b")]
    assert ("h", b"1") in next(r for r in records if r.key == b"p1").headers


def test_an_unreachable_broker_is_retryable(kafka_broker: Broker) -> None:
    settings = RuntimeSettings(
        kafka_bootstrap_servers="127.0.0.1:9",  # discard port: nothing listens
        kafka_topics=("x",),
        kafka_producer_extra={"message.timeout.ms": 1500},
    )
    publisher = create_publisher(settings, "svc")
    with pytest.raises(RetryableError):
        publisher.send("nowhere", [OutgoingRecord(b"k", b"v")])
