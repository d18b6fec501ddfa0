"""The consumer as the loop sees it: a Protocol implemented by the Kafka module and the test kit.

Rebalance callbacks run on the polling thread, inside ``consume``: the client calls the
listener, then completes the (incremental) assignment itself. ``on_assign`` returns the offsets
to start from for the partitions it knows (sink-managed); the others resume from the group's
committed offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from consumer_runtime._message import Message, TopicPartition


class RebalanceListener(Protocol):
    def on_assign(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]: ...

    def on_revoke(self, partitions: list[TopicPartition]) -> None: ...

    def on_lost(self, partitions: list[TopicPartition]) -> None: ...


class ConsumerClient(Protocol):
    def subscribe(self, topics: Sequence[str], listener: RebalanceListener) -> None: ...

    def consume(self, max_messages: int, timeout_s: float) -> list[Message]: ...

    def pause(self, partitions: Sequence[TopicPartition]) -> None: ...

    def resume(self, partitions: Sequence[TopicPartition]) -> None: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def commit(self, offsets: Mapping[TopicPartition, int], *, asynchronous: bool) -> None:
        """Commit next offsets; a synchronous commit raises ``CommitFailedError``."""
        ...

    def high_watermarks(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """Last known high watermarks (cached from fetch responses, no round trip)."""
        ...

    def set_commit_failure_hook(self, hook: Callable[[str], None]) -> None: ...

    def close(self) -> None: ...
