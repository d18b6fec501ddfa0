"""The one exception root of the parsing library.

Every malformed input raises ``ParseError`` with a stable, machine-readable ``code`` (used in
DLQ headers, metrics and dashboards) and a message a person can act on. Nothing else escapes
``parse_record``, ``Parser.parse_view`` or ``parse_user_activity``. ``ParseError`` is a permanent
record error of the consumer runtime's kind (its ``RecordError`` protocol: the class attribute
``permanent_record_error``, ``code``, ``message``, ``catch_all``) without this library importing
the runtime: the runtime dead-letters it with its code. Each of them is also wrapped in a last
line of defence that turns any other exception raised while parsing one record into
``ParseError("invalid_value")`` chained to it; that code means the parser lacks a precise check
for the record (a gap to report and close), never a normal outcome.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

ERROR_CODES: Final = frozenset(
    {
        "not_json",
        "bad_utf8",
        "not_object",
        "missing_field",
        "unknown_op",
        "bad_decimal",
        "type_mismatch",
        "too_large",
        "invalid_event",
        "invalid_value",
    }
)

#: The catch-all code: an exception the parser had no precise check for.
UNEXPECTED_CODE: Final = "invalid_value"


class CdcEventsError(Exception):
    """Root of every error raised by ``cdc_events``."""


class ParseError(CdcEventsError):
    """A record that cannot be parsed. ``code`` is one of ``ERROR_CODES``."""

    #: The consumer runtime's ``RecordError`` marker: dead-letter the record with ``code``.
    permanent_record_error: ClassVar[bool] = True

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown ParseError code {code!r}")
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message

    @property
    def catch_all(self) -> bool:
        """The catch-all (``invalid_value``): a gap in the parser, not a known kind of bad input."""
        return self.code == UNEXPECTED_CODE

    def __reduce__(self) -> tuple[type[ParseError], tuple[str, str]]:
        return (type(self), (self.code, self.message))

    @classmethod
    def unexpected(cls, exc: Exception, what: str) -> ParseError:
        """The last line of defence's error for ``exc``, raised while parsing ``what``."""
        detail = str(exc)
        if len(detail) > 200:
            detail = detail[:197] + "..."
        return cls(
            UNEXPECTED_CODE,
            f"{what}: unexpected {type(exc).__name__} ({detail}); the parser has no precise "
            "check for this input yet",
        )


def type_mismatch(what: str, value: Any, path: str) -> ParseError:
    """``ParseError("type_mismatch")``: the value at ``path`` is not ``what`` (shown cut short)."""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ParseError("type_mismatch", f"{path}: expected {what}, got {shown}")
