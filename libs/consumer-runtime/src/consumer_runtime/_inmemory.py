"""In-memory stand-ins for the broker side of the loop, for ``consumer_runtime.testing``.

``InMemoryConsumer`` implements the runtime's consumer Protocol over an in-memory partitioned log
with one consumer-group member reading it: assignment (every partition of the subscribed topics,
as they appear), pause/resume, seek, commits that can be made to fail, and simulated rebalances
(``revoke``, ``lose``, ``assign``) delivered inside the next ``consume``, as librdkafka does.
``InMemoryDlq`` records the dead letters the loop sends and can be told to fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from consumer_runtime._client import RebalanceListener
from consumer_runtime._errors import CommitFailedError, RetryableError
from consumer_runtime._message import InMemoryMessage, Message, TopicPartition
from consumer_runtime._sink import DeadLetter


class InMemoryConsumer:
    """An in-memory partitioned log with one consumer-group member reading it."""

    def __init__(self) -> None:
        self.log: dict[TopicPartition, list[Message]] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.fail_commits = False
        self._fetch: dict[TopicPartition, int] = {}
        self._assigned: list[TopicPartition] = []
        self._paused: set[TopicPartition] = set()
        self._listener: RebalanceListener | None = None
        self._topics: list[str] = []
        self._events: list[tuple[str, list[TopicPartition]]] = []
        self._withheld: set[TopicPartition] = set()
        self._hook: Callable[[str], None] = lambda _r: None

    # -- test controls ---------------------------------------------------------------------

    def produce(
        self,
        topic: str,
        values: Iterable[bytes | None],
        *,
        partition: int = 0,
        key: bytes | None = None,
        timestamp_ms: int = 0,
    ) -> list[InMemoryMessage]:
        tp = TopicPartition(topic, partition)
        log = self.log.setdefault(tp, [])
        out = [
            InMemoryMessage(topic, partition, len(log) + i, key, v, (), timestamp_ms)
            for i, v in enumerate(values)
        ]
        log.extend(out)
        return out

    def revoke(self, partitions: Sequence[TopicPartition]) -> None:
        """Take partitions away on the next poll (a cooperative rebalance)."""
        self._withheld.update(partitions)
        self._events.append(("revoke", list(partitions)))

    def lose(self, partitions: Sequence[TopicPartition]) -> None:
        """Partitions lost (session timed out): no commit allowed."""
        self._withheld.update(partitions)
        self._events.append(("lost", list(partitions)))

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        """Give (back) partitions on the next poll."""
        self._withheld.difference_update(partitions)
        self._events.append(("assign", list(partitions)))

    @property
    def assignment(self) -> list[TopicPartition]:
        return list(self._assigned)

    @property
    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def remaining(self) -> int:
        """Messages not yet handed out to the member, over assigned partitions."""
        return sum(
            max(0, len(self.log.get(tp, [])) - self._fetch.get(tp, 0)) for tp in self._assigned
        )

    # -- ConsumerClient ----------------------------------------------------------------------

    def subscribe(self, topics: Sequence[str], listener: RebalanceListener) -> None:
        self._listener = listener
        self._topics = list(topics)

    def consume(self, max_messages: int, timeout_s: float) -> list[Message]:
        self._rebalance()
        out: list[Message] = []
        for tp in self._assigned:
            if tp in self._paused:
                continue
            log = self.log.get(tp, [])
            pos = self._fetch.get(tp, 0)
            take = log[pos : pos + max_messages - len(out)]
            out.extend(take)
            self._fetch[tp] = pos + len(take)
            if len(out) >= max_messages:
                break
        return out

    def pause(self, partitions: Sequence[TopicPartition]) -> None:
        self._paused.update(partitions)

    def resume(self, partitions: Sequence[TopicPartition]) -> None:
        self._paused.difference_update(partitions)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._fetch[partition] = offset

    def commit(self, offsets: Mapping[TopicPartition, int], *, asynchronous: bool) -> None:
        if self.fail_commits:
            if asynchronous:
                self._hook("commit failed (simulated)")
                return
            raise CommitFailedError("commit failed (simulated)")
        offsets = dict(offsets)
        self.commits.append(offsets)
        self.committed.update(offsets)

    def high_watermarks(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.log.get(tp, [])) for tp in partitions}

    def set_commit_failure_hook(self, hook: Callable[[str], None]) -> None:
        self._hook = hook

    def close(self) -> None:
        if self._listener is not None and self._assigned:
            self._listener.on_revoke(list(self._assigned))
        self._assigned = []

    def _subscribed(self, tp: TopicPartition) -> bool:
        if not self._topics:
            return True
        return any(
            re.match(t, tp.topic) if t.startswith("^") else t == tp.topic for t in self._topics
        )

    def _rebalance(self) -> None:
        if self._listener is None:
            return
        events, self._events = self._events, []
        for kind, parts in events:
            mine = [tp for tp in parts if (tp in self._assigned) != (kind == "assign")]
            if mine:
                self._apply(kind, mine)
        new = [
            tp
            for tp in self.log
            if tp not in self._assigned and tp not in self._withheld and self._subscribed(tp)
        ]
        if new:
            self._apply("assign", new)

    def _apply(self, kind: str, parts: list[TopicPartition]) -> None:
        assert self._listener is not None
        if kind == "assign":
            start = self._listener.on_assign(parts)
            for tp in parts:
                self._assigned.append(tp)
                self._fetch[tp] = start.get(tp, self.committed.get(tp, 0))
            return
        if kind == "revoke":
            self._listener.on_revoke(parts)
        else:
            self._listener.on_lost(parts)
        self._assigned = [tp for tp in self._assigned if tp not in parts]
        self._paused.difference_update(parts)


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """What landed in the DLQ topic: the dead letter and the topic it was sent to."""

    topic: str
    dead_letter: DeadLetter


class InMemoryDlq:
    """Records dead letters; ``fail_next(n)`` makes the next ``n`` sends fail (retryable)."""

    def __init__(self) -> None:
        self.records: list[DeadLetterRecord] = []
        self._failures = 0

    def fail_next(self, n: int) -> None:
        self._failures = n

    def send(self, topic: str, dead_letters: list[DeadLetter], service: str) -> None:
        if self._failures > 0:
            self._failures -= 1
            raise RetryableError("DLQ unavailable (simulated)")
        self.records.extend(DeadLetterRecord(topic, d) for d in dead_letters)

    def close(self) -> None:
        return None
