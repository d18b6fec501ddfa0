"""The record the runtime works on: a ``Message`` Protocol and an in-memory implementation.

The Protocol mirrors the accessor methods of ``confluent_kafka.Message`` so the Kafka module can
hand the client's messages through without copying them, while unit tests (which cannot build a
``confluent_kafka.Message``) use ``InMemoryMessage``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

Headers = list[tuple[str, bytes | None]]

# confluent-kafka's TIMESTAMP_CREATE_TIME: the producer's clock.
TIMESTAMP_CREATE_TIME = 1


class TopicPartition(NamedTuple):
    """A partition of a topic (no offset: offsets travel in mappings keyed by this)."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]"


class Message(Protocol):
    """One consumed Kafka record, as the runtime and the decoders see it."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Headers | None: ...
    def timestamp(self) -> tuple[int, int]: ...


@dataclass(frozen=True, slots=True)
class InMemoryMessage:
    """A ``Message`` built in memory, for tests and tools."""

    topic_name: str
    partition_id: int
    offset_value: int
    key_bytes: bytes | None = None
    value_bytes: bytes | None = None
    header_list: tuple[tuple[str, bytes | None], ...] = field(default=())
    timestamp_ms: int = 0

    def topic(self) -> str:
        return self.topic_name

    def partition(self) -> int:
        return self.partition_id

    def offset(self) -> int:
        return self.offset_value

    def key(self) -> bytes | None:
        return self.key_bytes

    def value(self) -> bytes | None:
        return self.value_bytes

    def headers(self) -> Headers | None:
        return list(self.header_list) if self.header_list else None

    def timestamp(self) -> tuple[int, int]:
        return (TIMESTAMP_CREATE_TIME, self.timestamp_ms)


def topic_partition(message: Message) -> TopicPartition:
    return TopicPartition(message.topic() or "", message.partition() or 0)
