"""What a service plugs into the runtime: a decoder, a sink, and how offsets are committed.

The runtime owns Kafka (polling, rebalances, commits, the DLQ); the sink owns its store. They
meet at ``Batch``: the decoded records of one poll, grouped by partition, with the offsets the
consumer would resume from once the batch is durable ("next offset to read", as Kafka commits).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from consumer_runtime._message import Message, TopicPartition

T = TypeVar("T")

Offsets = Mapping[TopicPartition, int]

#: ``decode(message) -> record``; ``None`` means "nothing to do for this record" (skipped);
#: a ``PermanentError`` or a ``RecordError`` (``cdc_events.ParseError``) sends the record to the
#: DLQ.
Decoder = Callable[[Message], T | None]


class CommitStrategy(enum.StrEnum):
    """How the consumer's position is made durable."""

    #: The sink stores the batch's ``next_offsets`` in the same transaction as its data and
    #: returns them from ``stored_offsets``; the runtime seeks there on assignment. The Kafka
    #: commit is still made afterwards, for lag monitoring and as a fallback.
    SINK_MANAGED = "sink-managed"
    #: The Kafka commit is made only for offsets the sink reports durable.
    COMMIT_AFTER_FLUSH = "commit-after-flush"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be decoded, as sent to the dead-letter topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_ms: int
    code: str
    message: str
    exception_class: str


@dataclass(slots=True)
class Batch(Generic[T]):
    """The decoded records of one poll, per partition, and where to resume after them.

    ``next_offsets`` covers every partition that had a message in the poll, including those whose
    records were all skipped or dead-lettered, so a sink-managed store keeps its position exact.
    ``dead_letters`` were already acknowledged by the DLQ topic; a sink may also record them
    (e.g. in a DLQ table) in the same transaction.
    """

    records: dict[TopicPartition, list[T]] = field(default_factory=dict)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: The message each record was decoded from, in the same order (filled by the runtime, so
    #: that a record a store refuses can be dead-lettered with its original bytes; empty in a
    #: batch built by hand). Sinks do not need it.
    sources: dict[TopicPartition, list[Message]] = field(default_factory=dict)

    def __iter__(self) -> Iterator[T]:
        for records in self.records.values():
            yield from records

    def __len__(self) -> int:
        return sum(len(r) for r in self.records.values())

    @property
    def partitions(self) -> list[TopicPartition]:
        return list(self.next_offsets)

    def without(self, partitions: Sequence[TopicPartition]) -> None:
        """Drop what belongs to ``partitions`` (they were revoked or lost mid-retry)."""
        gone = set(partitions)
        for tp in gone:
            self.records.pop(tp, None)
            self.sources.pop(tp, None)
            self.next_offsets.pop(tp, None)
        self.dead_letters = [
            d for d in self.dead_letters if TopicPartition(d.topic, d.partition) not in gone
        ]


class Sink(Protocol[T]):
    """The storage side of a service. ``BaseSink`` gives no-op defaults for every hook.

    Optional: a ``metrics_registry`` attribute (a prometheus ``CollectorRegistry``) whose
    metrics the runtime serves on its ``/metrics`` next to its own.

    Durability reports: ``write_batch``, ``on_revoke`` and ``flush`` return either ``None``
    ("everything handed to me so far is durable") or a mapping of "durable up to" next offsets
    per partition; a sink that holds records across batches (a window) returns only what it has
    written out, and the runtime commits only that (``commit-after-flush``).
    """

    def write_batch(self, batch: Batch[T]) -> Offsets | None: ...

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> Offsets:
        """Next offsets the sink stored for ``partitions`` (sink-managed only; omit unknown)."""
        ...

    def on_assign(self, partitions: Sequence[TopicPartition]) -> None: ...

    def on_revoke(self, partitions: Sequence[TopicPartition]) -> Offsets | None:
        """Write out what belongs to ``partitions``: they are about to be given up."""
        ...

    def on_lost(self, partitions: Sequence[TopicPartition]) -> None:
        """Drop state of ``partitions``: another member may own them already."""
        ...

    def flush(self) -> Offsets | None:
        """Write out everything held (shutdown)."""
        ...

    def tick(self) -> Offsets | None:
        """Called about once a second (``SINK_TICK_INTERVAL_MS``), records or not: a windowed
        sink writes out windows that went idle and returns the offsets that made durable;
        ``None`` (or an empty mapping) reports nothing new. A sink may also define
        ``tick_due() -> bool`` (not part of this protocol): when it returns true the loop ticks
        on that poll, before the clock would (``WriteBehind``: a background write finished)."""
        ...

    def close(self) -> None: ...

    def healthy(self) -> bool:
        """Cheap reachability check for ``/readyz``."""
        ...


class BaseSink(Generic[T]):
    """Defaults for the optional hooks: a stateless sink implements only ``write_batch``."""

    def write_batch(self, batch: Batch[T]) -> Offsets | None:
        raise NotImplementedError

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> Offsets:
        return {}

    def on_assign(self, partitions: Sequence[TopicPartition]) -> None:
        return None

    def on_revoke(self, partitions: Sequence[TopicPartition]) -> Offsets | None:
        return None

    def on_lost(self, partitions: Sequence[TopicPartition]) -> None:
        return None

    def flush(self) -> Offsets | None:
        return None

    def tick(self) -> Offsets | None:
        return None

    def close(self) -> None:
        return None

    def healthy(self) -> bool:
        return True


def source_timestamp_ms(record: object) -> int | None:
    """The source commit time a decoded record reports (``source_ts_ms``), if any."""
    value = getattr(record, "source_ts_ms", None)
    return value if isinstance(value, int) else None
