"""The offset tracker: what this member consumed, what its sink made durable, what it committed.

This is the one place that keeps the runtime's invariant, **never commit past a record that is
not durable**: a commit target is always the durable offset, never the consumer's position.
Offsets are "next offset to read" everywhere, per partition:

- ``position``: how far the sink has been handed records (the consumer resumes here after a
  pause);
- ``durable``: how far the sink reported its records stored (``None`` from a sink means
  "everything handed to me"); never beyond ``position``, so a sink's report cannot skip records;
- ``committed``: what was last committed to Kafka; a commit never moves it backwards;
- ``started``: the offset of the first record fetched since the partition joined, where lag is
  counted from until something is durable (a gauge only, never a commit target). Fetched
  records are looked at for it only for ``START_SCAN_S`` after partitions join: a partition
  with records delivers some within a poll or two, and an empty one must not cost every batch
  a look at each record for as long as it stays empty.

A partition that leaves this member (revoked or lost) is forgotten at once: what was not
committed is its next owner's to read again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from consumer_runtime._message import Message, TopicPartition, topic_partition
from consumer_runtime._sink import Offsets

# How long after partitions join their first fetched records are looked for (see ``started``).
START_SCAN_S = 10.0


class OffsetTracker:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._scan_until = 0.0
        self.assigned: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._durable: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._started: dict[TopicPartition, int] = {}
        #: assigned partitions with no lag base yet (nothing durable, committed or fetched)
        self.unstarted: set[TopicPartition] = set()

    # -- reading -------------------------------------------------------------------------------

    @property
    def positions(self) -> dict[TopicPartition, int]:
        """Next offsets after the records handed to the sink (the consumer's position)."""
        return self._positions

    @property
    def committed(self) -> dict[TopicPartition, int]:
        return dict(self._committed)

    def position(self, tp: TopicPartition) -> int | None:
        return self._positions.get(tp)

    def lag_base(self, tp: TopicPartition) -> int | None:
        """Where lag is counted from: what is durable, not what was merely handed over, so a
        write still pending shows as lag (``cdc status`` and an autoscaler see the truth)."""
        durable = self._durable.get(tp)
        if durable is not None:
            return durable
        committed = self._committed.get(tp)
        return committed if committed is not None else self._started.get(tp)

    def note_fetched(self, messages: Iterable[Message]) -> bool:
        """Note where each unstarted partition's first fetched record is (its lag base until
        something is durable); returns whether a partition got its base."""
        if self._clock() > self._scan_until:
            self.unstarted.clear()  # empty since they joined: lag once something is durable
            return False
        noted = False
        for message in messages:
            tp = topic_partition(message)
            offset = message.offset()
            if tp in self.unstarted and offset is not None:
                self.unstarted.discard(tp)
                self._started[tp] = offset
                noted = True
                if not self.unstarted:
                    break
        return noted

    # -- membership ----------------------------------------------------------------------------

    def assign(self, partitions: Iterable[TopicPartition], start: Offsets) -> None:
        """Partitions joined this member; ``start``: where the sink says they resume."""
        self.assigned.update(partitions)
        self._positions.update(start)
        # What the sink already stores is durable by definition.
        self._durable.update(start)
        joined = [tp for tp in partitions if tp not in start]
        if joined:
            self.unstarted.update(joined)
            self._scan_until = self._clock() + START_SCAN_S

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self.assigned.discard(tp)
            self._positions.pop(tp, None)
            self._durable.pop(tp, None)
            self._committed.pop(tp, None)
            self._started.pop(tp, None)
            self.unstarted.discard(tp)

    # -- progress ------------------------------------------------------------------------------

    def handed(self, next_offsets: Mapping[TopicPartition, int]) -> None:
        """The sink accepted records up to ``next_offsets`` (durable or not yet)."""
        for tp, offset in next_offsets.items():
            if tp in self.assigned and offset > self._positions.get(tp, -1):
                self._positions[tp] = offset

    def record_durable(
        self, handed: Mapping[TopicPartition, int], reported: Offsets | None
    ) -> dict[TopicPartition, int]:
        """Note what the sink made durable (``reported``; ``None``: all of ``handed``).

        Returns the durable offsets of the partitions reported, for latency accounting.
        """
        report = handed if reported is None else reported
        out: dict[TopicPartition, int] = {}
        for tp, reported_offset in report.items():
            if tp not in self.assigned:
                continue  # revoked or lost meanwhile: its next owner reads it again
            # Never beyond what the sink was given: a sink's report cannot skip records.
            offset = min(reported_offset, self._positions.get(tp, reported_offset))
            if offset > self._durable.get(tp, -1):
                self._durable[tp] = offset
            if tp in self._durable:
                out[tp] = self._durable[tp]
        return out

    def commit_targets(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        """Durable offsets not yet committed, for ``partitions`` (default: all assigned)."""
        chosen = self.assigned if partitions is None else partitions
        return {
            tp: self._durable[tp]
            for tp in chosen
            if tp in self.assigned
            and tp in self._durable
            and self._durable[tp] > self._committed.get(tp, -1)
        }

    def committed_to(self, offsets: Mapping[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            if tp in self.assigned and offset > self._committed.get(tp, -1):
                self._committed[tp] = offset
