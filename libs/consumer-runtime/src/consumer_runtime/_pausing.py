"""Back-pressure while a batch waits out a transient failure (the model: Quix Streams'
``PausingManager``).

While the sink is retried, every partition this member owns is paused and the loop keeps
polling, so the member stays in its group. Two things can still bring records in:

- a client may deliver records it had fetched before the pause;
- a rebalance can assign a partition during the pause (a peer left): it is paused as soon as
  the client has it.

Either way the records are not processed now. The first offset delivered per partition is
noted, and on resume every paused partition is sought back to the loop's position (or, where
the loop has none yet, to the first offset delivered), so nothing fetched during the pause is
skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from consumer_runtime._client import ConsumerClient
from consumer_runtime._message import Message, TopicPartition


class Pausing:
    def __init__(self, client: ConsumerClient) -> None:
        self._client = client
        self.active = False
        self.paused: set[TopicPartition] = set()
        self._rewind: dict[TopicPartition, int] = {}

    def pause(self, assigned: Iterable[TopicPartition]) -> None:
        """Start (or extend) a pause: every partition in ``assigned`` not yet paused."""
        self.active = True
        new = sorted(set(assigned) - self.paused)
        if new:
            self._client.pause(new)
            self.paused.update(new)

    def note(self, messages: Sequence[Message]) -> None:
        """Records the client delivered during the pause: remember where each partition starts."""
        for message in messages:
            tp = TopicPartition(message.topic() or "", message.partition() or 0)
            offset = message.offset() or 0
            if offset < self._rewind.get(tp, offset + 1):
                self._rewind[tp] = offset

    def resume(
        self, assigned: set[TopicPartition], position: Callable[[TopicPartition], int | None]
    ) -> list[TopicPartition]:
        """End the pause: resume the paused partitions still owned and seek each back."""
        resumed = sorted(self.paused & assigned)
        noted = set(self._rewind) & assigned
        self.paused.clear()
        self.active = False
        if resumed:
            self._client.resume(resumed)
        for tp in sorted(set(resumed) | noted):
            target = position(tp)
            if target is None:
                target = self._rewind.get(tp)
            if target is not None:
                self._client.seek(tp, target)
        self._rewind.clear()
        return resumed

    def blocks(self, tp: TopicPartition) -> bool:
        return tp in self.paused

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self.paused.discard(tp)
            self._rewind.pop(tp, None)
