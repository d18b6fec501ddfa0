"""The one exception root of the consumer runtime, and the error classes that drive it.

Retry behaviour lives in the exception type, not in the handler: a sink or decoder says what a
failure means by what it raises. ``RetryableError`` pauses the partitions and retries the batch
with backoff; ``PermanentError`` sends one record to the dead-letter topic, and so does any
``RecordError`` (an error of a library the runtime does not import, such as
``cdc_events.ParseError``); anything else is a bug or an unknown state and stops the process so
the orchestrator restarts it, with nothing committed past the failure.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable


class ConsumerRuntimeError(Exception):
    """Root of every error raised by ``consumer_runtime``."""


class RetryableError(ConsumerRuntimeError):
    """A transient failure (sink down, throttled, timed out): retry the same batch later.

    ``delay`` (seconds) overrides the backoff for the next attempt, e.g. a ``Retry-After``.
    """

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.delay = delay


class FencedError(RetryableError):
    """The store refused a write because another member owns the partition now: this member
    stalled past its session timeout (a zombie) and its successor claimed the partition.

    Nothing of the write is stored. It is retried like any transient failure, with the
    partitions paused; meanwhile the consumer learns of the rebalance (the partitions are
    lost or revoked), the batch sheds them, and the retry writes only what is still owned.
    """


class PermanentError(ConsumerRuntimeError):
    """A record that can never be processed (validation failed): it goes to the DLQ.

    ``code`` is a short, stable, machine-readable reason written to the DLQ headers.
    """

    def __init__(self, message: str, *, code: str = "invalid_record") -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message


@runtime_checkable
class RecordError(Protocol):
    """A permanent, typed error about one record, raised by a decoder's own library.

    The runtime imports no parser: a library makes its errors permanent record errors of the
    runtime's kind by giving their class ``permanent_record_error = True`` and each instance a
    stable ``code`` (the DLQ header ``__cdc.errors.code``) and a ``message``; ``catch_all`` is
    true for the library's catch-all (an exception it had no precise check for), which the
    decode breaker counts like an untyped failure. ``cdc_events.ParseError`` is one.
    """

    permanent_record_error: ClassVar[bool]
    code: str
    message: str

    @property
    def catch_all(self) -> bool: ...


def is_record_error(exc: BaseException) -> bool:
    """``exc`` is a ``PermanentError`` or a ``RecordError``: the record goes to the DLQ with its
    code, and it counts as a typed failure unless it is a library's ``catch_all``."""
    if isinstance(exc, PermanentError):
        return True
    return getattr(type(exc), "permanent_record_error", False) is True and isinstance(
        getattr(exc, "code", None), str
    )


def is_typed_failure(exc: BaseException) -> bool:
    """A decoder failure that says what is wrong with the record (not a bug or a gap)."""
    return is_record_error(exc) and getattr(exc, "catch_all", False) is not True


class RejectedError(PermanentError):
    """The store refused a write for good: a value past a column's range, characters it cannot
    hold, a row a constraint rejects. Retrying the same batch cannot succeed.

    A sink raises it from ``write_batch`` (or ``flush``) for the whole batch; the runtime then
    isolates the refusing record by splitting the batch until it is alone, dead-letters it with
    this error's message (the store's own words) and writes the rest. A sink that writes in the
    background learns of a refusal one call late: it passes the batch the refusal belongs to as
    ``batch`` (and forgets it), and the runtime isolates that batch before the current one.
    """

    def __init__(
        self, message: str, *, code: str = "store_rejected", batch: object | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.batch = batch


class DecoderBrokenError(ConsumerRuntimeError):
    """The decoder raised an unexpected error on too many records in a row: a bug (a bad
    deploy, a parser that cannot read what the connector now writes), not bad records. The
    loop stops without committing, so the orchestrator restarts it and alerts fire, instead of
    the whole stream being dead-lettered."""


class SettingsError(ConsumerRuntimeError):
    """The environment does not describe a valid configuration; the message names the variable."""


class KafkaClientError(ConsumerRuntimeError):
    """The Kafka client failed in a way the runtime cannot recover from by retrying."""


class CommitFailedError(ConsumerRuntimeError):
    """An offset commit was rejected by the group coordinator."""
