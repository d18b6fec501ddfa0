"""The only module that imports ``confluent_kafka``: the consumer client and the DLQ producer.

Everything else works on the ``Message`` Protocol and our own ``TopicPartition``; Kafka errors
are wrapped here into ``consumer_runtime`` errors. ``confluent_kafka.Message`` objects satisfy
the Protocol and are passed through without copying.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import confluent_kafka
import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from consumer_runtime._client import RebalanceListener
from consumer_runtime._dlq import dlq_record
from consumer_runtime._errors import CommitFailedError, KafkaClientError, RetryableError
from consumer_runtime._message import Message, TopicPartition
from consumer_runtime._publish import OutgoingRecord
from consumer_runtime._sink import DeadLetter

_log = structlog.get_logger("consumer_runtime.kafka")

# How long a DLQ write may wait for the broker's acknowledgement before the batch is retried.
_DLQ_ACK_TIMEOUT_S = 10.0
# What librdkafka reports for a watermark it has not learned yet.
_WATERMARK_UNKNOWN = confluent_kafka.OFFSET_INVALID


def _ctp(tp: TopicPartition, offset: int | None = None) -> confluent_kafka.TopicPartition:
    if offset is None:
        return confluent_kafka.TopicPartition(tp.topic, tp.partition)
    return confluent_kafka.TopicPartition(tp.topic, tp.partition, offset)


def _tp(ctp: confluent_kafka.TopicPartition) -> TopicPartition:
    return TopicPartition(ctp.topic, ctp.partition)


class KafkaConsumerClient:
    """``ConsumerClient`` over ``confluent_kafka.Consumer``; incremental when cooperative."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        cfg = dict(config)
        cfg["on_commit"] = self._on_commit
        cfg.setdefault("error_cb", self._on_error)
        strategy = str(cfg.get("partition.assignment.strategy", "range,roundrobin"))
        self._cooperative = "cooperative-sticky" in strategy
        self._listener: RebalanceListener | None = None
        self._callback_error: BaseException | None = None
        self._fatal: KafkaError | None = None
        self._commit_failure_hook: Callable[[str], None] = lambda _reason: None
        self._sync_commit = False
        try:
            self._consumer = Consumer(cfg)
        except (KafkaException, ValueError, TypeError) as exc:
            raise KafkaClientError(f"invalid Kafka consumer configuration: {exc}") from exc

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener) -> None:
        self._listener = listener
        try:
            self._consumer.subscribe(
                list(topics),
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
        except KafkaException as exc:
            raise KafkaClientError(f"subscribe to {list(topics)} failed: {exc}") from exc

    def consume(self, max_messages: int, timeout_s: float) -> list[Message]:
        try:
            messages: list[Any] = self._consumer.consume(max_messages, timeout_s)
        except KafkaException as exc:
            raise KafkaClientError(f"consume failed: {exc}") from exc
        self._raise_pending()
        for m in messages:
            if m.error() is not None:
                return self._without_errors(messages)
        return messages

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self._consumer.pause([_ctp(tp) for tp in partitions])

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._consumer.resume([_ctp(tp) for tp in partitions])

    def seek(self, partition: TopicPartition, offset: int) -> None:
        try:
            self._consumer.seek(_ctp(partition, offset))
        except KafkaException as exc:
            # Without the seek, records fetched during the pause would be skipped.
            raise KafkaClientError(f"seek {partition} to {offset} failed: {exc}") from exc

    def commit(self, offsets: Mapping[TopicPartition, int], *, asynchronous: bool) -> None:
        ctps = [_ctp(tp, o) for tp, o in offsets.items()]
        try:
            if asynchronous:
                self._consumer.commit(offsets=ctps, asynchronous=True)
                return
            self._sync_commit = True
            try:
                result = self._consumer.commit(offsets=ctps, asynchronous=False)
            finally:
                self._sync_commit = False
        except KafkaException as exc:
            raise CommitFailedError(str(exc)) from exc
        failed = [f"{p.topic}[{p.partition}]: {p.error}" for p in result or [] if p.error]
        if failed:
            raise CommitFailedError("; ".join(failed))

    def high_watermarks(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        out: dict[TopicPartition, int] = {}
        for tp in partitions:
            try:
                _low, high = self._consumer.get_watermark_offsets(_ctp(tp), cached=True)
            except KafkaException:
                continue
            if high is not None and high != _WATERMARK_UNKNOWN:
                out[tp] = int(high)
        return out

    def set_commit_failure_hook(self, hook: Callable[[str], None]) -> None:
        self._commit_failure_hook = hook

    def close(self) -> None:
        try:
            self._consumer.close()
        except (KafkaException, RuntimeError) as exc:
            raise KafkaClientError(f"consumer close failed: {exc}") from exc
        self._raise_pending()

    # -- callbacks (run inside consume/close, on the polling thread) -------------------------

    def _on_assign(self, consumer: Any, partitions: list[confluent_kafka.TopicPartition]) -> None:
        tps = [_tp(p) for p in partitions]
        start: Mapping[TopicPartition, int] = {}
        if self._listener is not None and self._callback_error is None:
            try:
                start = self._listener.on_assign(tps)
            except BaseException as exc:  # re-raised from consume(), after the assignment
                self._callback_error = exc
        # OFFSET_INVALID: resume from the group's committed offset (or auto.offset.reset).
        assignment = [_ctp(tp, start.get(tp, confluent_kafka.OFFSET_INVALID)) for tp in tps]
        if self._cooperative:
            consumer.incremental_assign(assignment)
        else:
            consumer.assign(assignment)

    def _on_revoke(self, consumer: Any, partitions: list[confluent_kafka.TopicPartition]) -> None:
        self._release(consumer, partitions, lost=False)

    def _on_lost(self, consumer: Any, partitions: list[confluent_kafka.TopicPartition]) -> None:
        self._release(consumer, partitions, lost=True)

    def _release(
        self, consumer: Any, partitions: list[confluent_kafka.TopicPartition], *, lost: bool
    ) -> None:
        tps = [_tp(p) for p in partitions]
        if self._listener is not None and self._callback_error is None:
            try:
                if lost:
                    self._listener.on_lost(tps)
                else:
                    self._listener.on_revoke(tps)
            except BaseException as exc:
                self._callback_error = exc
        try:
            if self._cooperative:
                consumer.incremental_unassign(partitions)
            else:
                consumer.unassign()
        except KafkaException as exc:
            # While closing, the consumer may already have released them itself.
            _log.debug("unassign failed", error=str(exc))

    def _on_commit(self, err: KafkaError | None, partitions: list[Any]) -> None:
        if self._sync_commit:
            return  # reported by commit() itself
        failed = [f"{p.topic}[{p.partition}]: {p.error}" for p in partitions or [] if p.error]
        if err is not None and err.code() != KafkaError._NO_OFFSET:
            failed.append(str(err))
        if failed:
            _log.warning("asynchronous offset commit failed", error="; ".join(failed))
            self._commit_failure_hook("; ".join(failed))

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err
        _log.warning("kafka client error", error=str(err), code=err.name())

    def _raise_pending(self) -> None:
        if self._callback_error is not None:
            exc, self._callback_error = self._callback_error, None
            raise exc
        if self._fatal is not None:
            raise KafkaClientError(f"fatal Kafka client error: {self._fatal}")

    def _without_errors(self, messages: list[Any]) -> list[Message]:
        out: list[Message] = []
        for m in messages:
            err = m.error()
            if err is None:
                out.append(m)
            elif err.fatal():
                raise KafkaClientError(f"fatal consumer error: {err}")
            elif err.code() != KafkaError._PARTITION_EOF:
                _log.warning(
                    "consumer error", error=str(err), topic=m.topic(), partition=m.partition()
                )
        return out


class KafkaDlqProducer:
    """``DlqProducer`` over an idempotent ``confluent_kafka.Producer``, created on first use.

    Records whose delivery is still pending after a timeout are not produced again on the retry
    (they are still queued); only failed ones are, so a retry does not duplicate DLQ entries.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = {
            **config,
            "enable.idempotence": True,
            "acks": "all",
            # DLQ records are rare; a short linger batches a burst of them.
            "linger.ms": 5,
        }
        self._producer: Any = None
        self._state: dict[tuple[str, int, int], str] = {}

    def send(self, topic: str, dead_letters: list[DeadLetter], service: str) -> None:
        if self._producer is None:
            try:
                self._producer = Producer(self._config)
            except (KafkaException, ValueError, TypeError) as exc:
                raise KafkaClientError(f"invalid Kafka producer configuration: {exc}") from exc
        errors: list[str] = []
        for dead in dead_letters:
            ident = (dead.topic, dead.partition, dead.offset)
            if self._state.get(ident) in ("acked", "inflight"):
                continue
            self._state[ident] = "inflight"
            self._produce(topic, dead, service, ident, errors)
        self._producer.flush(_DLQ_ACK_TIMEOUT_S)
        idents = [(d.topic, d.partition, d.offset) for d in dead_letters]
        if all(self._state.get(i) == "acked" for i in idents):
            for i in idents:
                self._state.pop(i, None)
            return
        raise RetryableError(
            f"dead-letter topic {topic!r} did not acknowledge {len(idents)} records "
            f"(check that the topic exists and the broker is reachable): {errors[:3]}"
        )

    def _produce(
        self,
        topic: str,
        dead: DeadLetter,
        service: str,
        ident: tuple[str, int, int],
        errors: list[str],
    ) -> None:
        def on_delivery(err: KafkaError | None, _msg: Any) -> None:
            if err is None:
                self._state[ident] = "acked"
            else:
                self._state[ident] = "failed"
                errors.append(str(err))

        key, value, headers = dlq_record(dead, service)
        while True:
            try:
                self._producer.produce(
                    topic, key=key, value=value, headers=headers, on_delivery=on_delivery
                )
                return
            except BufferError:
                self._producer.poll(0.1)
            except KafkaException as exc:
                self._state[ident] = "failed"
                raise RetryableError(f"producing to the DLQ failed: {exc}") from exc

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(_DLQ_ACK_TIMEOUT_S)
            self._producer = None  # destroys the client and its broker connections


class KafkaPublisher:
    """``Publisher`` over an idempotent producer: ``send`` returns once the broker acknowledged
    every record, or raises ``RetryableError`` (a service's outbox retries later)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = {
            **config,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            # Same key, same partition as the Java producer would choose.
            "partitioner": "murmur2_random",
        }
        self._producer: Any = None

    def send(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        if self._producer is None:
            try:
                self._producer = Producer(self._config)
            except (KafkaException, ValueError, TypeError) as exc:
                raise KafkaClientError(f"invalid Kafka producer configuration: {exc}") from exc
        errors: list[str] = []

        def on_delivery(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        for record in records:
            while True:
                try:
                    self._producer.produce(
                        topic,
                        key=record.key,
                        value=record.value,
                        headers=list(record.headers),
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    self._producer.poll(0.1)
                except KafkaException as exc:
                    raise RetryableError(f"producing to {topic!r} failed: {exc}") from exc
        pending = self._producer.flush(_DLQ_ACK_TIMEOUT_S)
        if pending or errors:
            raise RetryableError(
                f"{topic!r} did not acknowledge {pending or len(errors)} records: {errors[:3]}"
            )

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(_DLQ_ACK_TIMEOUT_S)
            self._producer = None
