"""Dead-letter records: what goes to ``<service>.dlq`` for a record that cannot be decoded.

Key and value are forwarded unchanged (cut only when they would not fit a Kafka record, see
``dlq_record``); provenance travels in headers in the Kafka Connect convention
(``__connect.errors.*``), so the usual tooling (and ``cdc dlq``) can read them, plus the service
and the stable error code under ``__cdc.errors.*``.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from consumer_runtime._errors import RejectedError
from consumer_runtime._message import Message
from consumer_runtime._sink import DeadLetter

HEADER_TOPIC = "__connect.errors.topic"
HEADER_PARTITION = "__connect.errors.partition"
HEADER_OFFSET = "__connect.errors.offset"
HEADER_CLASS = "__connect.errors.exception.class.name"
HEADER_MESSAGE = "__connect.errors.exception.message"
HEADER_SERVICE = "__cdc.errors.service"
HEADER_CODE = "__cdc.errors.code"
HEADER_TRUNCATED = "__cdc.errors.truncated"
HEADER_ORIGINAL_SIZE = "__cdc.errors.original.size"
HEADER_ORIGINAL_SHA256 = "__cdc.errors.original.sha256"

# A DLQ record must fit the broker's limit, or it can never be written and the partition would
# stall behind it: Kafka's default message.max.bytes is 1 MB (1,048,588), and a record above
# the parser's own size limit (1 MiB) is exactly what gets dead-lettered as ``too_large``. Key
# and value are cut to this budget; the record keeps its provenance (topic/partition/offset,
# still readable in the source topic until retention), the original size and a SHA-256.
DLQ_MAX_RECORD_BYTES = 900_000

# Kafka has no hard header limit, but a multi-megabyte message (a parse error quoting its input)
# would bloat every DLQ record; 4 KiB keeps the reason readable and the record small.
_MAX_MESSAGE_BYTES = 4096


class DlqProducer(Protocol):
    """Sends dead letters and returns only once the broker acknowledged all of them.

    Raises ``RetryableError`` if they could not be acknowledged in time.
    """

    def send(self, topic: str, dead_letters: list[DeadLetter], service: str) -> None: ...

    def close(self) -> None: ...


def dead_letter(
    message: Message, exc: BaseException, *, default_code: str = "invalid_record"
) -> DeadLetter:
    """Describe ``message`` and why it failed.

    A ``PermanentError`` or a ``RecordError`` (``cdc_events.ParseError``) gives its ``code`` and
    ``message``; any other exception gives ``default_code`` and ``"<Class>: <text>"``. A store's
    refusal (``RejectedError``) names the store's own exception (its ``__cause__``) as the
    class.
    """
    code = getattr(exc, "code", None)
    reason = getattr(exc, "message", None)
    if not isinstance(reason, str) and not isinstance(code, str):
        reason = f"{type(exc).__name__}: {exc}"
    origin = exc.__cause__ if isinstance(exc, RejectedError) and exc.__cause__ is not None else exc
    return DeadLetter(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        headers=tuple(message.headers() or ()),
        timestamp_ms=message.timestamp()[1],
        code=code if isinstance(code, str) else default_code,
        message=reason if isinstance(reason, str) else str(exc),
        exception_class=f"{type(origin).__module__}.{type(origin).__qualname__}",
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


def dlq_record(
    dead: DeadLetter, service: str, max_bytes: int = DLQ_MAX_RECORD_BYTES
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """(key, value, headers) of the DLQ record, cut to ``max_bytes`` when the original is larger
    (headers then say so, with the original size and digest)."""
    key, value = dead.key, dead.value
    headers = dlq_headers(dead, service)
    size = len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers)
    if size <= max_bytes:
        return key, value, headers
    original = (key or b"") + (value or b"")
    budget = max(0, max_bytes - sum(len(k) + len(v) for k, v in headers) - 256)
    if key is not None and len(key) > budget // 2:
        key = key[: budget // 2]
    if value is not None:
        value = value[: max(0, budget - len(key or b""))]
    headers += [
        (HEADER_TRUNCATED, b"true"),
        (HEADER_ORIGINAL_SIZE, f"{len(dead.key or b'')},{len(dead.value or b'')}".encode()),
        (HEADER_ORIGINAL_SHA256, hashlib.sha256(original).hexdigest().encode()),
    ]
    return key, value, headers


def _truncate(text: str) -> bytes:
    return text.encode()[:_MAX_MESSAGE_BYTES].decode(errors="ignore").encode()
