"""Isolating the records a store refuses (the model: Kafka Connect's errant-record reporter,
KIP-610).

A sink raises ``RejectedError`` (a ``PermanentError``) when its store refused a batch for good:
a value past a column's range, characters the store cannot hold, a row a constraint rejects.
The runtime cannot tell which record is to blame, so it splits the batch in halves, writes
each half, and splits again every half the store refuses, until each refused record is alone.
Those are dead-lettered with the store's own error; everything else is written, in order. A
batch of ``n`` records with ``k`` refused ones costs about ``2·k·log2(n)`` writes.

Each half is written and made durable before the next (``write``), so the store's offsets
advance in order; partitions that left the member meanwhile are not written. A refused record
is dead-lettered (``send``: acknowledged by the DLQ topic) the moment it is isolated, before any
later part is written: a part's offsets pass it, so a crash after that write must not find it
undead-lettered. The sink gets each dead letter with the first part written after it (and the
batch's own dead letters with the first part), so a sink that keeps them (a DLQ table) stores
them in the transaction that passes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

from consumer_runtime._dlq import dead_letter
from consumer_runtime._errors import PermanentError
from consumer_runtime._message import TopicPartition
from consumer_runtime._sink import Batch, DeadLetter

T = TypeVar("T")

#: (partition, index of the record in ``batch.records[partition]``)
_Entry = tuple[TopicPartition, int]

_log = structlog.get_logger("consumer_runtime")


def isolate(
    batch: Batch[T],
    refusal: PermanentError,
    write: Callable[[Batch[T]], object],
    owned: Callable[[TopicPartition], bool],
    send: Callable[[list[DeadLetter]], object],
) -> tuple[list[tuple[_Entry, DeadLetter]], list[DeadLetter]]:
    """Write every record of ``batch`` the store accepts; return those it refused, each with
    its dead letter (the original message and the store's reason), and the dead letters no
    written part carried yet (for the closing write).

    ``write`` writes a sub-batch durably and raises ``PermanentError`` if the store refuses it;
    ``send`` dead-letters records and returns once the DLQ acknowledged them.
    Raises ``refusal`` itself when the batch does not carry the messages its records came from
    (a batch built by hand): there is nothing to dead-letter then.
    """
    if any(len(batch.sources.get(tp, ())) != len(recs) for tp, recs in batch.records.items()):
        raise refusal
    entries = [(tp, i) for tp, recs in batch.records.items() for i in range(len(recs))]
    run = _Isolation(batch, write, owned, send)
    run.split(entries, refusal)
    return run.refused, run.carry


class _Isolation(Generic[T]):
    def __init__(
        self,
        batch: Batch[T],
        write: Callable[[Batch[T]], object],
        owned: Callable[[TopicPartition], bool],
        send: Callable[[list[DeadLetter]], object],
    ) -> None:
        self.batch = batch
        self.write = write
        self.owned = owned
        self.send = send
        self.refused: list[tuple[_Entry, DeadLetter]] = []
        # Dead letters the next written part carries to the sink.
        self.carry: list[DeadLetter] = list(batch.dead_letters)

    def split(self, entries: list[_Entry], refusal: PermanentError) -> None:
        if len(entries) == 1:
            tp, i = entries[0]
            dead = dead_letter(self.batch.sources[tp][i], refusal)
            _log.warning(
                "record refused by the store; dead-lettered",
                topic=dead.topic,
                partition=dead.partition,
                offset=dead.offset,
                code=dead.code,
                error=dead.message,
            )
            self.send([dead])
            self.refused.append((entries[0], dead))
            self.carry.append(dead)
            return
        mid = len(entries) // 2
        for part in (entries[:mid], entries[mid:]):
            half = [e for e in part if self.owned(e[0])]
            if not half:
                continue
            sub = sub_batch(self.batch, half)
            sub.dead_letters = list(self.carry)
            try:
                self.write(sub)
            except PermanentError as exc:
                self.split(half, exc)
            else:
                self.carry.clear()


def sub_batch(batch: Batch[T], entries: list[_Entry]) -> Batch[T]:
    """The records of ``entries`` as a batch of their own, resuming after its last record."""
    sub: Batch[T] = Batch()
    for tp, i in entries:
        sub.records.setdefault(tp, []).append(batch.records[tp][i])
        source = batch.sources[tp][i]
        sub.sources.setdefault(tp, []).append(source)
        sub.next_offsets[tp] = (source.offset() or 0) + 1
    return sub
