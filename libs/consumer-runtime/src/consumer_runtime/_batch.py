"""Pure helpers of the loop about one poll's messages and the batch made of them.

- ``by_bytes``: a poll cut into runs of at most ``BATCH_MAX_BYTES`` of keys and values;
- ``outcomes``: how many records of each topic were processed, skipped and dead-lettered (the
  ``cdc_messages_total`` counts);
- ``ranges``: the offsets a batch covers per partition, for the log of a failed write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from consumer_runtime._message import Message, TopicPartition
from consumer_runtime._sink import Batch

T = TypeVar("T")


def by_bytes(messages: list[Message], max_bytes: int) -> list[list[Message]]:
    """``messages`` cut into runs of at most ``max_bytes`` of keys and values (a message larger
    than that is a run of its own). Most polls are one run: this only sums lengths."""
    total = 0
    for m in messages:
        total += len(m.value() or b"") + len(m.key() or b"")
    if total <= max_bytes:
        return [messages]
    runs: list[list[Message]] = []
    run: list[Message] = []
    size = 0
    for m in messages:
        n = len(m.value() or b"") + len(m.key() or b"")
        if run and size + n > max_bytes:
            runs.append(run)
            run, size = [], 0
        run.append(m)
        size += n
    if run:
        runs.append(run)
    return runs


def outcomes(batch: Batch[T], skipped: Mapping[TopicPartition, int]) -> dict[tuple[str, str], int]:
    """``{(topic, outcome): count}`` of a delivered batch: ``processed``, ``skipped``, ``dlq``."""
    by_topic: dict[tuple[str, str], int] = {}
    for tp, records in batch.records.items():
        key = (tp.topic, "processed")
        by_topic[key] = by_topic.get(key, 0) + len(records)
    for tp, n in skipped.items():
        key = (tp.topic, "skipped")
        by_topic[key] = by_topic.get(key, 0) + n
    for dead in batch.dead_letters:
        key = (dead.topic, "dlq")
        by_topic[key] = by_topic.get(key, 0) + 1
    return by_topic


def ranges(batch: Batch[T], messages: Sequence[Message]) -> dict[str, str]:
    """``{"topic[partition]": "first..last"}``: the offsets ``batch`` covers."""
    first: dict[str, int] = {}
    for m in messages:
        key = f"{m.topic()}[{m.partition()}]"
        first.setdefault(key, m.offset() or 0)
    return {
        k: f"{first.get(k, '?')}..{o - 1}"
        for k, o in ((str(tp), o) for tp, o in batch.next_offsets.items())
    }
