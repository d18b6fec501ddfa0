"""Reading partitions for the admin API without joining a consumer group.

``KafkaAdmin.read`` (the records of partitions, for ``cdc dlq``) and ``KafkaAdmin.end_offsets``
with ``exact=True`` (the offset after the last record) read with a consumer that only
``assign``s: it never joins a group and never commits, so no group appears on the cluster. A read
ends at the end of every partition (``enable.partition.eof``); one that yields nothing for the
admin's timeout fails with ``KafkaClientError`` instead of waiting for ever.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, cast

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, KafkaException

from consumer_runtime._errors import KafkaClientError
from consumer_runtime._message import InMemoryMessage, TopicPartition


class PartitionReader:
    """Reads partitions from given offsets to their end with an assign-only consumer.

    ``config`` is the admin's librdkafka configuration; ``error`` turns a ``KafkaException``
    into the admin's ``KafkaClientError`` (naming what failed and where).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        timeout_s: float,
        error: Callable[[str, KafkaException], KafkaClientError],
    ) -> None:
        self.config = config
        self.timeout_s = timeout_s
        self._error = error

    def records(
        self,
        begin: Mapping[TopicPartition, int],
        wanted: Mapping[TopicPartition, int],
        max_per_partition: int | None,
    ) -> list[InMemoryMessage]:
        """Read each partition from ``begin`` to its end (or ``max_per_partition`` records) and
        keep the records from ``wanted`` on, copied into ``InMemoryMessage``s, in offset order."""
        out: dict[TopicPartition, list[InMemoryMessage]] = {tp: [] for tp in begin}
        consumer = self._consumer("cdc-admin-reader")
        pending = set(begin)
        try:
            _assign(consumer, begin)
            idle_since = time.monotonic()
            while pending:
                if time.monotonic() - idle_since > self.timeout_s:
                    raise KafkaClientError(
                        f"reading {len(pending)} partition(s) got nothing for "
                        f"{self.timeout_s:g}s: {', '.join(map(str, sorted(pending)[:5]))}"
                    )
                for msg in consumer.consume(1000, 0.2):
                    idle_since = time.monotonic()
                    tp = TopicPartition(msg.topic() or "", msg.partition() or 0)
                    err = msg.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            raise KafkaClientError(f"reading {tp} failed: {err}")
                        pending.discard(tp)
                        continue
                    offset = int(msg.offset() or 0)
                    if tp not in pending or offset < wanted[tp]:
                        continue
                    out[tp].append(
                        InMemoryMessage(
                            tp.topic,
                            tp.partition,
                            offset,
                            msg.key(),
                            msg.value(),
                            # Consumed records carry a list of (name, bytes or None).
                            tuple(cast(list[tuple[str, bytes | None]], msg.headers() or [])),
                            msg.timestamp()[1],
                        )
                    )
                    if max_per_partition is not None and len(out[tp]) >= max_per_partition:
                        pending.discard(tp)
        except KafkaException as exc:
            raise self._error("reading records", exc) from exc
        finally:
            consumer.close()
        return [m for tp in sorted(out) for m in out[tp]]

    def last_offsets(self, starts: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Read each partition from its start offset to the end; the last offset read."""
        if not starts:
            return {}
        consumer = self._consumer("cdc-admin-probe", {"isolation.level": "read_uncommitted"})
        last: dict[TopicPartition, int] = {}
        pending = set(starts)
        try:
            _assign(consumer, starts)
            deadline = time.monotonic() + self.timeout_s
            while pending:
                if time.monotonic() > deadline:
                    raise KafkaClientError(
                        f"reading the end of {len(pending)} partition(s) timed out after "
                        f"{self.timeout_s:g}s: {', '.join(map(str, sorted(pending)[:5]))}"
                    )
                for msg in consumer.consume(1000, 0.2):
                    tp = TopicPartition(msg.topic() or "", msg.partition() or 0)
                    err = msg.error()
                    if err is None:
                        last[tp] = max(last.get(tp, -1), int(msg.offset() or 0))
                    elif err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(tp)
                    else:
                        raise KafkaClientError(f"reading the end of {tp} failed: {err}")
        except KafkaException as exc:
            raise self._error("reading the end of partitions", exc) from exc
        finally:
            consumer.close()
        return last

    def _consumer(self, purpose: str, extra: Mapping[str, Any] | None = None) -> Consumer:
        """A consumer for ``assign`` only: it never joins a group nor commits."""
        config = {
            **self.config,
            # assign() only: no join, no commit, so the group never appears on the cluster.
            "group.id": f"{purpose}-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 100,
            **(extra or {}),
        }
        try:
            return Consumer(config)
        except (KafkaException, ValueError, TypeError) as exc:
            raise KafkaClientError(f"invalid Kafka consumer configuration: {exc}") from exc


def _assign(consumer: Consumer, starts: Mapping[TopicPartition, int]) -> None:
    consumer.assign(
        [confluent_kafka.TopicPartition(tp.topic, tp.partition, o) for tp, o in starts.items()]
    )
