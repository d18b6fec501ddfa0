"""Publishing records from a service (e.g. the stats aggregator's low-stock alerts).

Services never import the Kafka client: they get a ``Publisher`` from ``create_publisher`` (the
runtime's Kafka module builds it) and tests use ``InMemoryPublisher``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


class Publisher(Protocol):
    """``send`` returns once every record is acknowledged, else raises ``RetryableError``."""

    def send(self, topic: str, records: Sequence[OutgoingRecord]) -> None: ...

    def close(self) -> None: ...


@dataclass
class InMemoryPublisher:
    sent: list[tuple[str, OutgoingRecord]] = field(default_factory=list)
    fail_next: int = 0

    def send(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        from consumer_runtime._errors import RetryableError

        if self.fail_next:
            self.fail_next -= 1
            raise RetryableError(f"{topic!r} unavailable (simulated)")
        self.sent.extend((topic, r) for r in records)

    def close(self) -> None:
        return None


def create_publisher(settings: Any, service: str) -> Publisher:
    """A publisher with the service's Kafka connection settings (``RuntimeSettings``)."""
    from consumer_runtime._kafka import KafkaPublisher

    config = settings.producer_config(service)
    config["client.id"] = f"{service}-publisher"
    return KafkaPublisher(config)
