"""Plain user-activity events (the web front end's ``user-events`` topic): a validated model.

These are not Debezium records, so they have their own entry point, ``parse_user_activity``,
with the same error contract as ``parse_record``: ``ParseError`` with ``not_json``,
``bad_utf8``, ``not_object``, ``too_large``, ``missing_field`` or ``invalid_event`` (and, as
its last line of defence, ``invalid_value`` for any other exception, which would be a gap in
the checks below).

Rules: ``event_type`` is one of click/view/add_to_cart/purchase; ``timestamp`` is an ISO-8601
string (no offset means UTC) and is held in UTC, so it must fall within years 1-9999 in UTC
(``0001-01-01T00:00:00+01:00`` does not); a purchase needs ``amount`` > 0 (a JSON number or a
decimal string, kept as an exact ``Decimal``, its scale within ``±16383`` as for every decimal
of the parser); other events may omit ``amount``;
``duration`` (seconds, exposed as ``duration_seconds``) is optional and >= 0; ``metadata`` is
an optional object. Unknown fields are ignored, so the front end can add fields before
consumers know them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

import orjson
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cdc_events import _decimal as dec
from cdc_events._errors import ParseError
from cdc_events._model import normalise

EVENT_TYPES: Final = ("click", "view", "add_to_cart", "purchase")
EventType = Literal["click", "view", "add_to_cart", "purchase"]


class UserActivity(BaseModel):
    """One user-activity event."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    event_id: str = Field(min_length=1, max_length=200)
    user_id: str = Field(min_length=1, max_length=200)
    event_type: EventType
    timestamp: datetime
    amount: Decimal | None = None
    # On the wire the field is ``duration`` (seconds), as the front end sends it; the older
    # ``duration_seconds`` spelling is accepted too.
    duration_seconds: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        validation_alias=AliasChoices("duration", "duration_seconds"),
    )
    metadata: dict[str, Any] | None = None

    @field_validator("event_id", "user_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        # Front ends send numeric user ids too; an id is text either way.
        if type(value) is int:
            return str(value)
        return value

    @field_validator("timestamp", mode="before")
    @classmethod
    def _iso_timestamp(cls, value: Any) -> datetime:
        if isinstance(value, datetime):  # built in code rather than parsed
            return _in_utc(value, value.isoformat())
        if not isinstance(value, str):
            raise ValueError("timestamp must be an ISO-8601 string")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"timestamp {value!r:.60} is not ISO-8601") from None
        return _in_utc(parsed, value)

    @field_validator("amount", mode="before")
    @classmethod
    def _exact_amount(cls, value: Any) -> Any:
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError("amount must be a number or a decimal string")
        try:
            # repr() of a JSON number read as a double is its shortest exact text ("19.99").
            amount = Decimal(value if isinstance(value, str) else repr(value))
        except InvalidOperation:
            raise ValueError(f"amount {value!r:.40} is not a decimal number") from None
        if not amount.is_finite():
            raise ValueError("amount must be finite")
        if not dec.in_decimal_range(amount):
            raise ValueError(
                f"amount {value!r:.40} is out of range (its scale is outside "
                f"[-{dec.MAX_SCALE}, {dec.MAX_SCALE}])"
            )
        return amount

    @model_validator(mode="after")
    def _purchase_has_amount(self) -> UserActivity:
        if self.event_type == "purchase" and (self.amount is None or self.amount <= 0):
            raise ValueError("a purchase needs an amount > 0")
        if self.amount is not None and self.amount < 0:
            raise ValueError("amount must not be negative")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The normalised JSON form (decimal as exact text, timestamp ISO-8601 UTC)."""
        return {
            "kind": "user_activity",
            "event_id": self.event_id,
            "user_id": self.user_id,
            "event_type": self.event_type,
            "timestamp": normalise(self.timestamp),
            "amount": normalise(self.amount),
            "duration_seconds": self.duration_seconds,
            "metadata": self.metadata,
        }


def _in_utc(moment: datetime, value: Any) -> datetime:
    """``moment`` in UTC (naive: taken as UTC); a ``ValueError`` naming ``value`` if UTC puts
    it outside the years 1-9999 ``datetime`` holds (``0001-01-01T00:00:00+01:00``)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"timestamp {value!r:.60} is out of range: in UTC it is not between years 1 and 9999"
        ) from None


def parse_user_activity(value: bytes | None, *, max_bytes: int = 1 << 20) -> UserActivity:
    """Parse and validate one user-activity event; raises ``ParseError`` and nothing else."""
    # A try costs nothing in CPython 3.11 until something is raised.
    try:
        return _parse(value, max_bytes)
    except (ParseError, MemoryError):
        raise
    except Exception as exc:  # the contract: only ParseError escapes
        raise ParseError.unexpected(exc, "user-activity event") from exc


def _parse(value: bytes | None, max_bytes: int) -> UserActivity:
    if value is None:
        raise ParseError("not_object", "a user-activity record without a value")
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ParseError("type_mismatch", f"value must be bytes, got {type(value).__name__}")
    if len(value) > max_bytes:
        raise ParseError(
            "too_large", f"value is {len(value)} bytes, over the {max_bytes}-byte limit"
        )
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise ParseError("bad_utf8", f"value is not valid UTF-8 at byte {uexc.start}") from exc
        raise ParseError("not_json", f"value is not valid JSON: {exc}") from exc
    if type(doc) is not dict:
        raise ParseError("not_object", f"value is a JSON {type(doc).__name__}, not an object")
    try:
        return UserActivity.model_validate(doc)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        missing = [".".join(map(str, e["loc"])) for e in errors if e["type"] == "missing"]
        if missing:
            raise ParseError(
                "missing_field", f"user-activity event without {', '.join(missing)}"
            ) from None
        detail = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in errors[:5]
        )
        raise ParseError("invalid_event", f"invalid user-activity event: {detail}") from None
