"""Lag read from the embedded broker: committed offsets against end offsets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cdc_operator import KafkaLagReader, LagReadError
from confluent_kafka import Consumer, TopicPartition
from devstack import produce


def _commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        consumer.assign(tps)
        consumer.commit(offsets=tps, asynchronous=False)
    finally:
        consumer.close()


def _fill(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    for partition, count in per_partition.items():
        # One record per batch: the embedded broker's high watermark is only exact then.
        produce(bootstrap, topic, [(None, b"x")] * count, partition=partition, one_per_batch=True)


def test_lag_is_end_minus_committed_per_partition(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
) -> None:
    topic = make_topic(partitions=3)
    _fill(kafka_bootstrap, topic, {0: 5, 1: 3, 2: 0})
    _commit(kafka_bootstrap, kafka_group, {(topic, 0): 2, (topic, 1): 3})
    lag = KafkaLagReader(kafka_bootstrap).read(kafka_group, [topic])
    by_partition = {p.partition: (p.committed, p.end_offset, p.lag) for p in lag.partitions}
    assert by_partition == {0: (2, 5, 3), 1: (3, 3, 0), 2: (None, 0, 0)}
    assert lag.total == 3
    assert lag.partition_count == 3


def test_uncommitted_group_counts_everything_and_patterns_resolve(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
    unique_id: str,
) -> None:
    first = make_topic(partitions=2, name=f"cdc{unique_id}.public.a")
    second = make_topic(partitions=1, name=f"cdc{unique_id}.public.b")
    _fill(kafka_bootstrap, first, {0: 2, 1: 1})
    _fill(kafka_bootstrap, second, {0: 4})
    lag = KafkaLagReader(kafka_bootstrap).read(kafka_group, [rf"^cdc{unique_id}\.public\..*"])
    assert lag.by_topic() == {first: 3, second: 4}
    assert lag.partition_count == 3


def test_unknown_topic_is_a_lag_read_error(kafka_bootstrap: str, kafka_group: str) -> None:
    with pytest.raises(LagReadError, match="do not exist"):
        KafkaLagReader(kafka_bootstrap).read(kafka_group, ["no-such-topic-xyz"])
