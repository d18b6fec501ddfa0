"""Consumer-group lag read from Kafka: committed offsets against end offsets, per partition.

The only module of the operator that imports confluent_kafka. It opens a consumer with the
group's id but never subscribes, so it never joins the group or triggers a rebalance: it only
fetches the group's committed offsets (OffsetFetch) and the partitions' watermarks
(ListOffsets). A partition without a committed offset counts all its retained records as lag,
which is what a consumer with ``auto.offset.reset=earliest`` still has to read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from cdc_operator._errors import LagReadError

# Each Kafka call of one reading waits at most this long: a reading runs every 30 s, so a
# broker that does not answer in 10 s shows as an error in the status instead of a stuck timer.
_REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    end_offset: int
    lag: int


@dataclass(frozen=True, slots=True)
class GroupLag:
    group_id: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def partition_count(self) -> int:
        return len(self.partitions)

    def by_topic(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.partitions:
            out[p.topic] = out.get(p.topic, 0) + p.lag
        return out


def resolve_topics(patterns: Sequence[str], existing: Sequence[str]) -> list[str]:
    """Topic names for ``patterns``: a name as is, a pattern starting with ``^`` as a regular
    expression matched against ``existing`` (the librdkafka subscription convention).
    Internal topics (``__``-prefixed) never match a pattern."""
    names: set[str] = set()
    for pattern in patterns:
        if pattern.startswith("^"):
            regex = re.compile(pattern)
            names.update(t for t in existing if not t.startswith("__") and regex.match(t))
        elif pattern in existing:
            names.add(pattern)
    return sorted(names)


class KafkaLagReader:
    """Reads a group's lag. ``config`` adds librdkafka settings (security, SASL)."""

    def __init__(self, bootstrap_servers: str, config: Mapping[str, Any] | None = None) -> None:
        self._bootstrap = bootstrap_servers
        self._config = dict(config or {})

    def read(self, group_id: str, topics: Sequence[str]) -> GroupLag:
        consumer = self._consumer(group_id)
        try:
            return self._read(consumer, group_id, topics)
        except KafkaException as exc:
            raise LagReadError(
                f"cannot read the lag of group {group_id!r} from {self._bootstrap}: {exc}. "
                "Check that the brokers are reachable from the operator's namespace."
            ) from exc
        finally:
            consumer.close()

    def _consumer(self, group_id: str) -> Consumer:
        try:
            return Consumer(
                {
                    **self._config,
                    "bootstrap.servers": self._bootstrap,
                    "group.id": group_id,
                    "enable.auto.commit": False,
                    "enable.partition.eof": False,
                }
            )
        except KafkaException as exc:
            raise LagReadError(f"invalid Kafka client settings: {exc}") from exc

    def _read(self, consumer: Consumer, group_id: str, topics: Sequence[str]) -> GroupLag:
        metadata = consumer.list_topics(timeout=_REQUEST_TIMEOUT_S)
        names = resolve_topics(topics, list(metadata.topics))
        missing = [t for t in topics if not t.startswith("^") and t not in names]
        if missing:
            raise LagReadError(f"topics {missing} do not exist on {self._bootstrap}")
        wanted = [
            TopicPartition(name, pid)
            for name in names
            for pid in sorted(metadata.topics[name].partitions)
        ]
        if not wanted:
            return GroupLag(group_id, ())
        committed = consumer.committed(wanted, timeout=_REQUEST_TIMEOUT_S)
        out: list[PartitionLag] = []
        for tp in committed:
            if tp.error is not None:
                raise LagReadError(f"committed offset of {tp.topic}[{tp.partition}]: {tp.error}")
            low, high = consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=_REQUEST_TIMEOUT_S, cached=False
            )
            offset = tp.offset if tp.offset >= 0 else None
            # Records below the low watermark were deleted by retention: not lag any more.
            start = low if offset is None else max(offset, low)
            out.append(PartitionLag(tp.topic, tp.partition, offset, high, max(high - start, 0)))
        return GroupLag(group_id, tuple(out))
