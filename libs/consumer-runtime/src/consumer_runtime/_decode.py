"""The decode step: one poll's messages to a ``Batch``, dead-lettering what cannot be decoded.

**No record stops a partition**: whatever a decoder raises for one record (a ``RecordError``
such as ``cdc_events.ParseError``, a ``PermanentError``, or any other ``Exception``: an
``OverflowError`` from a silly timestamp, a bug hit by one odd value) dead-letters that record
with its reason, and the partition flows on.
``RecordError``/``PermanentError`` keep their code; anything else is ``decode_failed`` with the
exception's class and message.

A decoder that fails *unexpectedly* (not a typed error, or one whose ``catch_all`` is true: the
parser's own ``invalid_value``) on ``limit`` records in a row is broken, not fed bad records:
dead-lettering the whole stream would hide a bad deploy. ``DecodeBreaker`` then raises
``DecoderBrokenError`` before anything of the batch is sent or written, and the loop stops
without committing.

Messages arrive in runs per partition, so per-partition state is looked up once per run, and
the next offset is stored once per run: this is the runtime's hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import structlog

from consumer_runtime._dlq import dead_letter
from consumer_runtime._errors import DecoderBrokenError, is_typed_failure
from consumer_runtime._message import Message, TopicPartition
from consumer_runtime._sink import Batch, Decoder

T = TypeVar("T")

#: The DLQ code of a record whose decoder raised something other than a typed error.
DECODE_FAILED = "decode_failed"

_log = structlog.get_logger("consumer_runtime")


class DecodeBreaker:
    """Counts unexpected decoder failures in a row, across batches; ``limit`` 0 disables it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = 0

    def failed(self, exc: Exception) -> None:
        if is_typed_failure(exc):
            return
        self.in_a_row += 1
        if self.limit and self.in_a_row >= self.limit:
            raise DecoderBrokenError(
                f"the decoder failed unexpectedly on {self.in_a_row} records in a row (last: "
                f"{type(exc).__name__}: {exc}); this is a bug or a format it cannot read, not "
                "bad records: stopping without committing instead of dead-lettering the stream"
            ) from exc


def decode_batch(
    messages: Sequence[Message],
    decoder: Decoder[T],
    *,
    owned: Callable[[TopicPartition], bool],
    positions: Mapping[TopicPartition, int],
    breaker: DecodeBreaker | None = None,
) -> tuple[Batch[T], dict[TopicPartition, int]]:
    """Decode ``messages``; returns the batch and how many records per partition were skipped
    (the decoder returned ``None``). Messages of partitions not ``owned`` (revoked, or paused:
    they are read again after the resume) and before the partition's position are dropped."""
    batch: Batch[T] = Batch()
    records = batch.records
    sources = batch.sources
    next_offsets = batch.next_offsets
    skipped: dict[TopicPartition, int] = {}
    cur_topic: str | None = None
    cur_partition: int | None = -1
    tp = TopicPartition("", -1)
    out: list[T] = []
    src: list[Message] = []
    keep = False
    floor = -1
    last = -1
    for message in messages:
        partition = message.partition()
        topic = message.topic()
        if partition != cur_partition or topic != cur_topic:
            if last >= 0:
                next_offsets[tp] = last + 1
                last = -1
            cur_topic, cur_partition = topic, partition
            tp = TopicPartition(topic or "", partition or 0)
            keep = owned(tp)
            floor = positions.get(tp, -1)
            out = records.setdefault(tp, [])
            src = sources.setdefault(tp, [])
        offset = message.offset() or 0
        if not keep or offset < floor:
            continue  # stale: before the position (already processed, or before a seek)
        try:
            value = decoder(message)
        except Exception as exc:
            if breaker is not None:
                breaker.failed(exc)
            dead = dead_letter(message, exc, default_code=DECODE_FAILED)
            batch.dead_letters.append(dead)
            _log.warning(
                "record dead-lettered",
                topic=dead.topic,
                partition=dead.partition,
                offset=dead.offset,
                code=dead.code,
                error=dead.message,
            )
        else:
            if breaker is not None:
                breaker.in_a_row = 0
            if value is None:
                skipped[tp] = skipped.get(tp, 0) + 1
            else:
                out.append(value)
                src.append(message)
        last = offset
    if last >= 0:
        next_offsets[tp] = last + 1
    for key in [k for k, v in records.items() if not v]:
        del records[key]
        del sources[key]
    return batch, skipped
