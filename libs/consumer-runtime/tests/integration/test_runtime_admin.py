"""The admin API (``consumer_runtime.KafkaAdmin``) against the embedded broker.

Records are produced one per batch where a test asserts on end offsets: the embedded broker
(tansu) reports the high watermark as the base offset of the partition's last batch + 1, so
only single-record batches make watermarks exact there (real Kafka needs no such care).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from consumer_runtime import (
    GroupActiveError,
    GroupState,
    KafkaAdmin,
    KafkaUnreachableError,
    TopicPartition,
)
from devstack import free_port, produce

# tansu: a group join waits for the session timeout of departed members; short keeps tests fast.
GROUP_TIMEOUTS = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


@contextmanager
def member(bootstrap: str, group: str, topic: str) -> Iterator[Consumer]:
    """A consumer that has joined ``group`` and holds its partitions until the block ends."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "admin-test-member",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **GROUP_TIMEOUTS,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while not consumer.assignment():
        assert time.monotonic() < deadline, "the member never got partitions"
        consumer.consume(10, 0.2)
    try:
        yield consumer
    finally:
        consumer.close()


def records(n: int) -> list[tuple[bytes, bytes]]:
    return [(str(i).encode(), b"x") for i in range(n)]


@pytest.fixture
def admin(kafka_bootstrap: str) -> Iterator[KafkaAdmin]:
    with KafkaAdmin({"bootstrap.servers": kafka_bootstrap}, timeout_s=10) as client:
        yield client


def test_groups_committed_offsets_and_alter(
    admin: KafkaAdmin, kafka_bootstrap: str, make_topic: Callable[..., str], kafka_group: str
) -> None:
    topic = make_topic(2)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    produce(kafka_bootstrap, topic, records(4), partition=0, one_per_batch=True)
    produce(kafka_bootstrap, topic, records(6), partition=1, one_per_batch=True)
    assert admin.partitions([topic]) == [p0, p1]
    assert admin.topics()[topic] == 2

    with member(kafka_bootstrap, group=kafka_group, topic=topic) as consumer:
        consumer.commit(
            offsets=[KafkaTopicPartition(topic, 0, 3), KafkaTopicPartition(topic, 1, 1)],
            asynchronous=False,
        )
        assert kafka_group in {g.group_id for g in admin.list_groups()}
        desc = admin.describe_group(kafka_group)
        # The embedded broker answers DescribeGroups without member details (empty client id,
        # host and assignment), so the state is what tells an active group here.
        assert desc.state is GroupState.STABLE
        assert desc.active
        assert admin.committed_offsets(kafka_group) == {p0: 3, p1: 1}
        assert admin.committed_offsets(kafka_group, [p1]) == {p1: 1}
        with pytest.raises(GroupActiveError, match="active"):
            admin.alter_committed_offsets(kafka_group, {p0: 0})
        assert admin.committed_offsets(kafka_group) == {p0: 3, p1: 1}

    desc = admin.describe_group(kafka_group)
    assert desc.state in (GroupState.EMPTY, GroupState.DEAD)
    assert not desc.active and desc.members == ()
    admin.alter_committed_offsets(kafka_group, {p0: 1, p1: 5})
    assert admin.committed_offsets(kafka_group) == {p0: 1, p1: 5}
    assert admin.committed_offsets(f"{kafka_group}-never-used") == {}


def test_watermarks_and_offsets_for_times(
    admin: KafkaAdmin, kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic(2)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    produce(kafka_bootstrap, topic, records(3), partition=0, one_per_batch=True)
    produce(kafka_bootstrap, topic, records(2), partition=1, one_per_batch=True)
    # Record timestamps are the producer's create time: everything above is before `middle`.
    time.sleep(0.05)
    middle = int(time.time() * 1000)
    time.sleep(0.05)
    produce(kafka_bootstrap, topic, records(4), partition=0, one_per_batch=True)
    produce(kafka_bootstrap, topic, records(1), partition=1, one_per_batch=True)

    marks = admin.watermarks([p0, p1])
    assert (marks[p0].low, marks[p0].high) == (0, 7)
    assert (marks[p1].low, marks[p1].high) == (0, 3)
    assert admin.beginning_offsets([p0, p1]) == {p0: 0, p1: 0}
    assert admin.end_offsets([p0, p1]) == {p0: 7, p1: 3}
    assert admin.end_offsets([p0, p1], exact=True) == {p0: 7, p1: 3}
    assert admin.offsets_for_times([p0, p1], middle) == {p0: 3, p1: 2}
    assert admin.offsets_for_times([p0, p1], 0) == {p0: 0, p1: 0}
    future = int(time.time() * 1000) + 3_600_000
    assert admin.offsets_for_times([p0, p1], future) == {p0: None, p1: None}


def test_exact_end_offsets_read_past_the_last_batch(
    admin: KafkaAdmin, kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic(2)
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    # 50 records lingering into one batch: the case where a broker's watermark may trail.
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 200})
    for _ in range(50):
        producer.produce(topic, value=b"x", partition=0)
    assert producer.flush(30) == 0
    ends = admin.end_offsets([p0, p1], exact=True)
    assert ends == {p0: 50, p1: 0}  # p1 is empty: nothing to read, the watermark stands
    assert admin.end_offsets([p0])[p0] <= 50
    # The probe reads with assign() only: it leaves no consumer group behind.
    assert not [g for g in admin.list_groups() if g.group_id.startswith("cdc-admin-probe")]


def test_unknown_topic_and_unreachable_broker(admin: KafkaAdmin) -> None:
    with pytest.raises(Exception, match="no such topic"):
        admin.partitions(["no-such-topic-anywhere"])
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    with (
        KafkaAdmin({"bootstrap.servers": address}, timeout_s=1) as dead,
        pytest.raises(KafkaUnreachableError, match=f"cannot reach Kafka at {address}"),
    ):
        dead.topics()
