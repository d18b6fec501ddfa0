"""End-to-end latency measured when records become durable, not when they are handed over.

The loop hands a batch to the sink; a sink that holds records (windows, a pipelined write)
reports later, through its "durable up to" offsets, when they are stored. The histogram
``cdc_end_to_end_latency_seconds`` is "sink durable time minus source commit time": each
batch's newest source time per partition waits here, keyed by the batch's next offset, until
the partition's durable offset reaches it. A sink that stores at once (reports ``None``) is
observed in the same turn, as before.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final

from consumer_runtime._message import TopicPartition

# Per partition: a window sink holding an hour of batches keeps a few thousand entries; the
# bound only stops a sink that never reports from growing memory (oldest dropped, unobserved).
_MAX_WAITING: Final = 50_000


class DurableLatency:
    """Source commit times waiting for their records to become durable."""

    def __init__(self, observe: Callable[[str, float], None]) -> None:
        self._observe = observe
        self._waiting: dict[TopicPartition, deque[tuple[int, int]]] = {}

    def handed(self, tp: TopicPartition, next_offset: int, source_ts_ms: int) -> None:
        """Records of ``tp`` before ``next_offset`` were handed over; the newest committed at
        ``source_ts_ms`` at the source."""
        waiting = self._waiting.setdefault(tp, deque())
        waiting.append((next_offset, source_ts_ms))
        if len(waiting) > _MAX_WAITING:
            waiting.popleft()

    def durable(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Observe every waiting batch whose records are now all durable (below ``offsets``)."""
        now = time.time()
        for tp, offset in offsets.items():
            waiting = self._waiting.get(tp)
            while waiting and waiting[0][0] <= offset:
                _, ts_ms = waiting.popleft()
                # A source clock ahead of ours is no negative latency (clocks lie).
                self._observe(tp.topic, max(0.0, now - ts_ms / 1000.0))

    def forget(self, tp: TopicPartition) -> None:
        """A partition left this member: its waiting records are the next owner's."""
        self._waiting.pop(tp, None)
