"""Kafka admin operations for operators' tools: consumer groups, their offsets, watermarks.

With ``_kafka`` (and ``_admin_read``, which reads partitions for it) the only modules allowed
to import ``confluent_kafka``. It backs ``cdc status``, ``cdc offsets``, ``cdc replay`` and
``cdc dlq``: list and describe consumer groups (state, members, assignments), read committed
offsets, watermarks and offsets for a timestamp, alter a group's committed offsets, read the
records of partitions without joining a group, and create a topic. Everything is returned as
small frozen dataclasses (``_admin_types``; records as ``InMemoryMessage``) keyed by the
runtime's own ``TopicPartition``; Kafka failures are raised as ``KafkaClientError`` subclasses
with a message that names what failed.

Offsets follow Kafka's convention everywhere: a committed offset is the next offset to read,
an end offset is the offset the next produced record will get.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any

import confluent_kafka
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from confluent_kafka.admin import OffsetSpec as _OffsetSpec  # type: ignore[attr-defined]

from consumer_runtime._admin_read import PartitionReader
from consumer_runtime._admin_types import (
    GroupActiveError,
    GroupDescription,
    GroupListing,
    GroupMember,
    GroupState,
    KafkaUnreachableError,
    Watermarks,
)
from consumer_runtime._errors import KafkaClientError
from consumer_runtime._message import InMemoryMessage, TopicPartition

__all__ = [
    "GroupActiveError",
    "GroupDescription",
    "GroupListing",
    "GroupMember",
    "GroupState",
    "KafkaAdmin",
    "KafkaUnreachableError",
    "Watermarks",
]

# The OffsetSpec factories are not annotated in confluent-kafka 2.16.
OffsetSpec: Any = _OffsetSpec

# librdkafka's own log lines (connection refused, ...) would repeat on stderr what the
# exceptions below already say; a caller that wants them passes its own "log_level".
_QUIET_LOG_LEVEL = 0
# Errors by which the group coordinator rejects an offset commit from outside the group while
# the group has members (Kafka accepts admin commits only for an empty group).
_GROUP_ACTIVE_CODES = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.NON_EMPTY_GROUP,
        KafkaError.FENCED_MEMBER_EPOCH,
        KafkaError.STALE_MEMBER_EPOCH,
    }
)
_UNREACHABLE_CODES = frozenset(
    {KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN}
)


class KafkaAdmin:
    """Admin operations on one cluster; a context manager (``close`` releases the client).

    ``config`` is librdkafka configuration: at least ``bootstrap.servers``, plus security
    settings (e.g. ``RuntimeSettings.common_kafka_config()``). ``timeout_s`` bounds each request.
    Nothing is sent until the first call; ``topics()`` doubles as the reachability check.
    """

    def __init__(self, config: Mapping[str, Any], *, timeout_s: float = 10.0) -> None:
        cfg = dict(config)
        cfg.setdefault("log_level", _QUIET_LOG_LEVEL)
        self.config: dict[str, Any] = cfg
        self.timeout_s = timeout_s
        try:
            self._client: AdminClient | None = AdminClient(cfg)
        except (KafkaException, ValueError, TypeError) as exc:
            raise KafkaClientError(f"invalid Kafka admin configuration: {exc}") from exc

    @property
    def _admin(self) -> AdminClient:
        if self._client is None:
            raise KafkaClientError("the admin client is closed")
        return self._client

    @property
    def bootstrap(self) -> str:
        return str(self.config.get("bootstrap.servers", ""))

    def __enter__(self) -> KafkaAdmin:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the client: its broker connections close with it."""
        self._client = None

    # -- cluster ----------------------------------------------------------------------------

    def topics(self) -> dict[str, int]:
        """Every topic of the cluster with its partition count; also the reachability check.

        Raises ``KafkaUnreachableError`` when no broker answers within ``timeout_s``.
        """
        try:
            metadata = self._admin.list_topics(timeout=self.timeout_s)
        except KafkaException as exc:
            raise self._error("reading the cluster's metadata", exc) from exc
        return {
            name: len(topic.partitions)
            for name, topic in metadata.topics.items()
            if topic.error is None
        }

    def partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        """All partitions of the given topics, sorted; ``KafkaClientError`` for an unknown one."""
        known = self.topics()
        wanted = sorted(set(topics))
        missing = [t for t in wanted if t not in known]
        if missing:
            raise KafkaClientError(f"no such topic(s) on {self.bootstrap}: {', '.join(missing)}")
        return [TopicPartition(t, p) for t in wanted for p in range(known[t])]

    # -- groups -----------------------------------------------------------------------------

    def list_groups(self) -> list[GroupListing]:
        """Every consumer group the cluster knows, sorted by id."""
        future = self._admin.list_consumer_groups(request_timeout=self.timeout_s)
        result = self._result(future, "listing consumer groups")
        errors = list(result.errors or [])
        if errors:
            first = errors[0]
            if isinstance(first, KafkaException):
                raise self._error("listing consumer groups", first)
            raise KafkaClientError(f"listing consumer groups failed: {first}")
        return sorted(
            (GroupListing.from_kafka(g) for g in result.valid or []), key=lambda g: g.group_id
        )

    def describe_groups(self, groups: Sequence[str]) -> dict[str, GroupDescription]:
        """State, members and their assignments of each group (a group that does not exist is
        reported by Kafka as ``Dead`` with no members)."""
        if not groups:
            return {}
        futures = self._admin.describe_consumer_groups(
            list(dict.fromkeys(groups)), request_timeout=self.timeout_s
        )
        out: dict[str, GroupDescription] = {}
        for group, future in futures.items():
            desc = self._result(future, f"describing consumer group {group!r}")
            out[group] = GroupDescription.from_kafka(group, desc)
        return out

    def describe_group(self, group: str) -> GroupDescription:
        return self.describe_groups([group])[group]

    def committed_offsets(
        self, group: str, partitions: Sequence[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        """The group's committed offsets (next offset to read); partitions without one are
        left out. ``partitions=None``: every partition the group has an offset for."""
        request = ConsumerGroupTopicPartitions(
            group,
            [confluent_kafka.TopicPartition(tp.topic, tp.partition) for tp in partitions]
            if partitions is not None
            else None,
        )
        futures = self._admin.list_consumer_group_offsets([request], request_timeout=self.timeout_s)
        result = self._result(futures[group], f"reading the offsets of group {group!r}")
        out: dict[TopicPartition, int] = {}
        for ctp in result.topic_partitions or []:
            if ctp.error is not None and ctp.error.code() != KafkaError.NO_ERROR:
                raise KafkaClientError(
                    f"reading the offset of group {group!r} on {ctp.topic}[{ctp.partition}] "
                    f"failed: {ctp.error}"
                )
            if ctp.offset is not None and ctp.offset >= 0:
                out[TopicPartition(ctp.topic, ctp.partition)] = int(ctp.offset)
        return dict(sorted(out.items()))

    def alter_committed_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Set the group's committed offsets. Kafka accepts this only while the group has no
        members: ``GroupActiveError`` otherwise (check ``describe_group(...).active`` first)."""
        if not offsets:
            return
        negative = [f"{tp}={o}" for tp, o in offsets.items() if o < 0]
        if negative:
            raise ValueError(f"offsets must not be negative: {', '.join(negative)}")
        request = ConsumerGroupTopicPartitions(
            group,
            [
                confluent_kafka.TopicPartition(tp.topic, tp.partition, int(o))
                for tp, o in sorted(offsets.items())
            ],
        )
        futures = self._admin.alter_consumer_group_offsets(
            [request], request_timeout=self.timeout_s
        )
        what = f"changing the offsets of group {group!r}"
        try:
            result = futures[group].result(timeout=self.timeout_s + 5)
        except KafkaException as exc:
            if _code(exc) in _GROUP_ACTIVE_CODES:
                raise self._active(group) from exc
            raise self._error(what, exc) from exc
        except TimeoutError as exc:
            raise KafkaUnreachableError(
                f"{what}: no answer from Kafka at {self.bootstrap} within {self.timeout_s:g}s"
            ) from exc
        failed = [ctp for ctp in result.topic_partitions or [] if ctp.error is not None]
        if any(ctp.error.code() in _GROUP_ACTIVE_CODES for ctp in failed):
            raise self._active(group)
        if failed:
            raise KafkaClientError(
                f"{what} failed: "
                + "; ".join(f"{c.topic}[{c.partition}]: {c.error}" for c in failed[:5])
            )

    # -- partition offsets ------------------------------------------------------------------

    def watermarks(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, Watermarks]:
        """Low (first available) and high (end) offset of each partition."""
        low = self._list_offsets(partitions, OffsetSpec.earliest(), "earliest offsets")
        high = self._list_offsets(partitions, OffsetSpec.latest(), "end offsets")
        return {tp: Watermarks(low[tp][0], high[tp][0]) for tp in partitions}

    def beginning_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The first available offset of each partition."""
        found = self._list_offsets(partitions, OffsetSpec.earliest(), "earliest offsets")
        return {tp: offset for tp, (offset, _ts) in found.items()}

    def end_offsets(
        self, partitions: Sequence[TopicPartition], *, exact: bool = False
    ) -> dict[TopicPartition, int]:
        """The end offset (high watermark) of each partition.

        ``exact=True`` also reads each non-empty partition from ``max(low, high - 1)`` to its
        end and returns ``max(high, last offset read + 1)``: on Kafka that reads at most the
        last record and agrees with the watermark; it corrects brokers whose watermark trails
        the last batch (the embedded test broker reports the last batch's base offset + 1).
        When the tail is a transaction marker nothing is read and the watermark stands.
        """
        marks = self.watermarks(partitions)
        ends = {tp: m.high for tp, m in marks.items()}
        if exact:
            starts = {tp: max(m.low, m.high - 1) for tp, m in marks.items() if m.high > m.low}
            for tp, last in self._reader().last_offsets(starts).items():
                ends[tp] = max(ends[tp], last + 1)
        return ends

    def offsets_for_times(
        self, partitions: Sequence[TopicPartition], timestamp_ms: int
    ) -> dict[TopicPartition, int | None]:
        """Per partition, the first offset whose record timestamp is at or after
        ``timestamp_ms``; ``None`` when no record is that recent (the caller usually takes the
        end offset then, as ``kafka-consumer-groups --to-datetime`` does)."""
        found = self._list_offsets(
            partitions, OffsetSpec.for_timestamp(int(timestamp_ms)), "offsets for a time"
        )
        # Not found is offset -1 with timestamp -1; some brokers answer offset 0 with
        # timestamp -1, so either marks "no record at or after this time".
        return {tp: (off if off >= 0 and ts >= 0 else None) for tp, (off, ts) in found.items()}

    # -- records and topics (``cdc dlq``) ----------------------------------------------------

    def read(
        self, starts: Mapping[TopicPartition, int], *, max_per_partition: int | None = None
    ) -> list[InMemoryMessage]:
        """The records of each partition from its start offset to its end, in offset order.

        Read with ``assign`` (no group join, nothing committed) until the end of every
        partition, or until ``max_per_partition`` records of it were read. A start before the
        first available offset reads from there; a start past the end reads nothing (on a
        broker whose watermark trails the last batch, see ``end_offsets``, the records of that
        batch are still found). Records are copied into ``InMemoryMessage``s, so they outlive
        the client. ``KafkaClientError`` when a partition yields nothing for ``timeout_s``.
        """
        marks = self.watermarks(list(starts))
        wanted: dict[TopicPartition, int] = {}
        begin: dict[TopicPartition, int] = {}
        for tp, start in starts.items():
            low, high = marks[tp].low, marks[tp].high
            if high <= low:
                continue  # empty
            wanted[tp] = max(start, low)
            # Never past the watermark minus one: a fetch beyond the end waits instead of
            # reporting the end, and the last batch may reach past a trailing watermark.
            begin[tp] = min(wanted[tp], max(low, high - 1))
        if not begin:
            return []
        return self._reader().records(begin, wanted, max_per_partition)

    def create_topic(
        self, name: str, *, partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> bool:
        """Create a topic with the broker's default replication; False if it already exists."""
        futures = self._admin.create_topics(
            [NewTopic(name, num_partitions=partitions, config=dict(config or {}))],
            operation_timeout=self.timeout_s,
            request_timeout=self.timeout_s,
        )
        try:
            futures[name].result(timeout=self.timeout_s + 5)
        except KafkaException as exc:
            if _code(exc) == KafkaError.TOPIC_ALREADY_EXISTS:
                return False
            raise self._error(f"creating topic {name!r}", exc) from exc
        except TimeoutError as exc:
            raise KafkaUnreachableError(
                f"creating topic {name!r}: no answer from Kafka at {self.bootstrap} "
                f"within {self.timeout_s:g}s"
            ) from exc
        return True

    # -- helpers ----------------------------------------------------------------------------

    def _list_offsets(
        self, partitions: Sequence[TopicPartition], spec: Any, what: str
    ) -> dict[TopicPartition, tuple[int, int]]:
        if not partitions:
            return {}
        request = {
            confluent_kafka.TopicPartition(tp.topic, tp.partition): spec for tp in partitions
        }
        futures = self._admin.list_offsets(request, request_timeout=self.timeout_s)
        out: dict[TopicPartition, tuple[int, int]] = {}
        for ctp, future in futures.items():
            tp = TopicPartition(ctp.topic, ctp.partition)
            info = self._result(future, f"reading the {what} of {tp}")
            out[tp] = (int(info.offset), int(info.timestamp))
        return out

    def _reader(self) -> PartitionReader:
        return PartitionReader(self.config, self.timeout_s, self._error)

    def _result(self, future: Future[Any], what: str) -> Any:
        try:
            return future.result(timeout=self.timeout_s + 5)
        except KafkaException as exc:
            raise self._error(what, exc) from exc
        except TimeoutError as exc:
            raise KafkaUnreachableError(
                f"{what}: no answer from Kafka at {self.bootstrap} within {self.timeout_s:g}s"
            ) from exc

    def _error(self, what: str, exc: KafkaException) -> KafkaClientError:
        if _code(exc) in _UNREACHABLE_CODES:
            return KafkaUnreachableError(f"cannot reach Kafka at {self.bootstrap} ({what}: {exc})")
        return KafkaClientError(f"{what} failed: {exc}")

    def _active(self, group: str) -> GroupActiveError:
        try:
            desc = self.describe_group(group)
        except KafkaClientError:
            return GroupActiveError(group, GroupState.UNKNOWN, 0)
        return GroupActiveError(group, desc.state, len(desc.members))


def _code(exc: KafkaException) -> int | None:
    err = exc.args[0] if exc.args else None
    return err.code() if isinstance(err, KafkaError) else None
