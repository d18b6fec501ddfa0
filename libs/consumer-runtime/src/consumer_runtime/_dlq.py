"""Dead-letter records: what goes to ``<service>.dlq`` for a record that cannot be decoded.

Key and value are forwarded unchanged; provenance travels in headers in the Kafka Connect
convention (``__connect.errors.*``), so the usual tooling (and ``cdc dlq``) can read them,
plus the service and the stable error code under ``__cdc.errors.*``.
"""

from __future__ import annotations

from typing import Protocol

from consumer_runtime._message import Message
from consumer_runtime._sink import DeadLetter

HEADER_TOPIC = "__connect.errors.topic"
HEADER_PARTITION = "__connect.errors.partition"
HEADER_OFFSET = "__connect.errors.offset"
HEADER_CLASS = "__connect.errors.exception.class.name"
HEADER_MESSAGE = "__connect.errors.exception.message"
HEADER_SERVICE = "__cdc.errors.service"
HEADER_CODE = "__cdc.errors.code"

# Kafka has no hard header limit, but a multi-megabyte message (a parse error quoting its input)
# would bloat every DLQ record; 4 KiB keeps the reason readable and the record small.
_MAX_MESSAGE_BYTES = 4096


class DlqProducer(Protocol):
    """Sends dead letters and returns only once the broker acknowledged all of them.

    Raises ``RetryableError`` if they could not be acknowledged in time.
    """

    def send(self, topic: str, dead_letters: list[DeadLetter], service: str) -> None: ...

    def close(self) -> None: ...


def dead_letter(message: Message, exc: BaseException) -> DeadLetter:
    """Describe ``message`` and why it failed; ``exc`` is a ``ParseError``/``PermanentError``."""
    code = getattr(exc, "code", None)
    reason = getattr(exc, "message", None)
    return DeadLetter(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        headers=tuple(message.headers() or ()),
        timestamp_ms=message.timestamp()[1],
        code=code if isinstance(code, str) else "invalid_record",
        message=reason if isinstance(reason, str) else str(exc),
        exception_class=f"{type(exc).__module__}.{type(exc).__qualname__}",
    )


def dlq_headers(dead: DeadLetter, service: str) -> list[tuple[str, bytes]]:
    """The original headers followed by the provenance headers."""
    out = [(k, v if v is not None else b"") for k, v in dead.headers]
    out += [
        (HEADER_TOPIC, dead.topic.encode()),
        (HEADER_PARTITION, str(dead.partition).encode()),
        (HEADER_OFFSET, str(dead.offset).encode()),
        (HEADER_CLASS, dead.exception_class.encode()),
        (HEADER_MESSAGE, _truncate(dead.message)),
        (HEADER_SERVICE, service.encode()),
        (HEADER_CODE, dead.code.encode()),
    ]
    return out


def _truncate(text: str) -> bytes:
    return text.encode()[:_MAX_MESSAGE_BYTES].decode(errors="ignore").encode()
