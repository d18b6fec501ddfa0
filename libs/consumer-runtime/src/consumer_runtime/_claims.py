"""Where partitions resume for a sink-managed member, when its store is slow to say.

On assignment a sink-managed member asks the sink where each partition resumes
(``Sink.stored_offsets``). That happens inside the assignment callback, where the loop cannot
keep polling, so two quick attempts ride out a blip. In a longer outage (a rebalance while the
store is down) the partitions wait, paused, nothing read from them: the first record the client
still delivered of each is noted, and the sink is asked again between polls with capped
backoff. Once it answers they are taken on from the stored offset (else from the first record
delivered while they waited). The member neither exits nor reads from the wrong offset.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog

from consumer_runtime._client import ConsumerClient
from consumer_runtime._errors import RetryableError
from consumer_runtime._message import Message, TopicPartition
from consumer_runtime._pausing import Pausing
from consumer_runtime._sink import Offsets, Sink

# Attempts inside the assignment callback before the partitions wait, paused.
_STORED_OFFSETS_ATTEMPTS = 2


class Claims:
    """The sink's stored offsets on assignment, and the partitions still waiting for them."""

    def __init__(
        self,
        client: ConsumerClient,
        sink: Sink[Any],
        max_delay_s: float,
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self._sink = sink
        self._log = log
        # Partitions assigned while the sink could not say where they resume (its store was
        # down): paused, nothing read from them, until ``stored_offsets`` answers.
        self._waiting = Pausing(client)
        self.unclaimed: set[TopicPartition] = set()
        self._next_claim = 0.0
        self._max_delay_s = max_delay_s
        self._delay = max_delay_s / 16

    def stored_offsets(self, partitions: list[TopicPartition]) -> Offsets:
        """The sink's offsets for ``partitions``, with a second attempt after a short sleep."""
        for attempt in range(1, _STORED_OFFSETS_ATTEMPTS + 1):
            try:
                return self._sink.stored_offsets(partitions)
            except RetryableError as exc:
                if attempt == _STORED_OFFSETS_ATTEMPTS:
                    raise
                self._log.warning("reading stored offsets failed; retrying", error=str(exc))
                time.sleep(min(0.2 * 2**attempt, 2.0))
        raise AssertionError("unreachable")

    def wait(self, partitions: list[TopicPartition], exc: RetryableError) -> None:
        """``stored_offsets`` failed for ``partitions``: they wait, paused, to be claimed."""
        self._log.warning(
            "the sink cannot say where these partitions resume; they wait, paused",
            partitions=[str(p) for p in partitions],
            error=str(exc),
        )
        self.unclaimed.update(partitions)
        self._next_claim = 0.0

    def note(self, messages: Sequence[Message]) -> None:
        """Pause waiting partitions (the client has them now) and remember the first record it
        delivered of each, so nothing fetched before the pause is skipped later."""
        if not self.unclaimed:
            return
        mine = [
            m
            for m in messages
            if TopicPartition(m.topic() or "", m.partition() or 0) in self.unclaimed
        ]
        self._waiting.note(mine)
        self._waiting.pause(self.unclaimed)

    def claim(self) -> tuple[list[TopicPartition], dict[TopicPartition, int]] | None:
        """Ask the sink again (when the backoff allows) where the waiting partitions resume:
        the partitions and their stored offsets once it answers, else ``None``."""
        now = time.monotonic()
        if now < self._next_claim:
            return None
        parts = sorted(self.unclaimed)
        try:
            stored = dict(self._sink.stored_offsets(parts))
        except RetryableError as exc:
            self._delay = min(self._delay * 2, self._max_delay_s)
            self._next_claim = now + self._delay
            self._log.warning("the sink still cannot say where partitions resume", error=str(exc))
            return None
        self.unclaimed.clear()
        self._delay = self._max_delay_s / 16
        return parts, stored

    def resume(self, parts: list[TopicPartition], stored: dict[TopicPartition, int]) -> None:
        """Take claimed partitions on: from the stored offset, else the first record delivered
        while they waited."""
        self._waiting.resume(set(parts), stored.get)
        self._log.info(
            "partitions taken on after the sink answered",
            offsets={str(tp): o for tp, o in stored.items()},
        )

    def forget(self, partitions: Sequence[TopicPartition]) -> None:
        self._waiting.forget(partitions)
        self.unclaimed.difference_update(partitions)
