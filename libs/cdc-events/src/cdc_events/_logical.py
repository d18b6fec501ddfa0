"""Exact decoders of Kafka Connect / Debezium logical types; decimals are ``_decimal``'s.

The bottom layer of the parser: one small function per wire representation, each turning a JSON
value into the Python value it stands for (``datetime`` in UTC, ``date``, ``time``,
``uuid.UUID``, parsed JSON, bytes) or raising ``ParseError``; ``_decimal`` does the same for
decimals. ``_schema`` picks the function from a field's schema once per schema;
``_column_types`` picks it from the registry for schemaless events. No I/O, no state.

Times have microsecond resolution in Python: nanosecond values (``NanoTimestamp``, ``NanoTime``,
a ``ZonedTimestamp`` with 7-9 fraction digits) are truncated toward the past to the microsecond.
PostgreSQL and MySQL store at most microseconds, so nothing is lost for those sources.

Ranges: a value of the right JSON type that its Python type cannot hold raises ``ParseError``
too, never ``OverflowError``/``ValueError``: timestamps and dates outside years 1-9999 in UTC,
times outside [00:00, 24:00) (``type_mismatch``).
"""

from __future__ import annotations

import binascii
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import orjson

from cdc_events._errors import type_mismatch

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DATE: Final = date(1970, 1, 1)
_EPOCH_ORDINAL: Final = EPOCH_DATE.toordinal()
_DAY_US: Final = 86_400_000_000
_MS: Final = timedelta(milliseconds=1)
# Epoch milliseconds a datetime can hold: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z.
MIN_EPOCH_MS: Final = (datetime.min.replace(tzinfo=UTC) - EPOCH) // _MS
MAX_EPOCH_MS: Final = (datetime.max.replace(tzinfo=UTC) - EPOCH) // _MS

# Debezium's default ``unavailable.value.placeholder`` for TOASTed values it cannot see, in each
# shape it takes on the wire: the string itself (text, json, enums), base64 of its bytes (bytea,
# precise decimals), a one-element array (text[]) and the array of its character codes (int[]).
PLACEHOLDER: Final = "__debezium_unavailable_value"
PLACEHOLDER_B64: Final = binascii.b2a_base64(PLACEHOLDER.encode(), newline=False).decode()
PLACEHOLDER_LIST: Final = [PLACEHOLDER]
PLACEHOLDER_CODES: Final = [ord(c) for c in PLACEHOLDER]

_new_uuid = object.__new__
_set_uuid = object.__setattr__
_UUID_SAFE_UNKNOWN: Final = uuid.SafeUUID.unknown

_ZONED = re.compile(r"^-?\d{4,6}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d(:\d\d)?)$")
_ZONED_TIME = re.compile(r"^\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d(:\d\d)?)$")


def is_placeholder(value: Any) -> bool:
    """True for every wire shape of the TOAST placeholder."""
    if type(value) is str:
        return value in (PLACEHOLDER, PLACEHOLDER_B64)
    if type(value) is list:
        return value in (PLACEHOLDER_LIST, PLACEHOLDER_CODES)
    return False


# -- dates and times --------------------------------------------------------------------------


def _int(value: Any, what: str, path: str) -> int:
    if type(value) is not int:
        raise type_mismatch(what, value, path)
    return value


def decode_date(value: Any, path: str = "value") -> date:
    """``Date`` / ``io.debezium.time.Date``: days since 1970-01-01 (negative before)."""
    days = _int(value, "days since the epoch (integer)", path)
    try:
        return date.fromordinal(_EPOCH_ORDINAL + days)
    except (OverflowError, ValueError) as exc:
        raise type_mismatch("a date between years 1 and 9999", value, path) from exc


def _from_epoch_us(us: int, value: Any, path: str) -> datetime:
    try:
        return EPOCH + timedelta(0, 0, us)  # positional: keyword parsing costs a third
    except OverflowError as exc:
        raise type_mismatch("a timestamp between years 1 and 9999", value, path) from exc


def decode_timestamp_ms(value: Any, path: str = "value") -> datetime:
    """``Timestamp`` / ``io.debezium.time.Timestamp``: milliseconds since the epoch, UTC."""
    return _from_epoch_us(_int(value, "epoch milliseconds", path) * 1000, value, path)


def decode_timestamp_us(value: Any, path: str = "value") -> datetime:
    """``io.debezium.time.MicroTimestamp``: microseconds since the epoch, UTC."""
    return _from_epoch_us(_int(value, "epoch microseconds", path), value, path)


def decode_timestamp_ns(value: Any, path: str = "value") -> datetime:
    """``io.debezium.time.NanoTimestamp``: nanoseconds, truncated to the microsecond."""
    return _from_epoch_us(_int(value, "epoch nanoseconds", path) // 1000, value, path)


def decode_zoned_timestamp(value: Any, path: str = "value") -> datetime:
    """``io.debezium.time.ZonedTimestamp``: ISO-8601 with an offset, 0-9 fraction digits."""
    if type(value) is not str or _ZONED.match(value) is None:
        raise type_mismatch("an ISO-8601 timestamp with offset", value, path)
    try:
        # Python 3.11 reads 1-9 fraction digits (truncating past 6), "Z" and offsets.
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise type_mismatch("an ISO-8601 timestamp with offset", value, path) from exc
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise type_mismatch("a timestamp between years 1 and 9999", value, path) from exc


def decode_timestamp_text(value: Any, path: str = "value") -> datetime:
    """An ISO-8601 timestamp; one without an offset is taken as UTC (Debezium's convention)."""
    if type(value) is not str:
        raise type_mismatch("an ISO-8601 timestamp", value, path)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise type_mismatch("an ISO-8601 timestamp", value, path) from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise type_mismatch("a timestamp between years 1 and 9999", value, path) from exc


def _time_from_us(us: int, value: Any, path: str) -> time:
    if not 0 <= us < _DAY_US:
        # PostgreSQL's time accepts 24:00:00, which datetime.time cannot hold.
        raise type_mismatch("a time of day in [00:00, 24:00)", value, path)
    seconds, micro = divmod(us, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return time(hour, minute, second, micro)


def decode_time_ms(value: Any, path: str = "value") -> time:
    """``Time`` / ``io.debezium.time.Time``: milliseconds since midnight."""
    return _time_from_us(_int(value, "milliseconds since midnight", path) * 1000, value, path)


def decode_time_us(value: Any, path: str = "value") -> time:
    """``io.debezium.time.MicroTime``: microseconds since midnight."""
    return _time_from_us(_int(value, "microseconds since midnight", path), value, path)


def decode_time_ns(value: Any, path: str = "value") -> time:
    """``io.debezium.time.NanoTime``: nanoseconds since midnight, truncated to microseconds."""
    return _time_from_us(_int(value, "nanoseconds since midnight", path) // 1000, value, path)


def decode_zoned_time(value: Any, path: str = "value") -> time:
    """``io.debezium.time.ZonedTime``: ``HH:MM:SS[.f]`` with an offset."""
    if type(value) is not str or _ZONED_TIME.match(value) is None:
        raise type_mismatch("an ISO-8601 time with offset", value, path)
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise type_mismatch("an ISO-8601 time with offset", value, path) from exc


def decode_time_text(value: Any, path: str = "value") -> time:
    if type(value) is not str:
        raise type_mismatch("an ISO-8601 time", value, path)
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise type_mismatch("an ISO-8601 time", value, path) from exc


def decode_date_text(value: Any, path: str = "value") -> date:
    if type(value) is not str:
        raise type_mismatch("an ISO-8601 date", value, path)
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise type_mismatch("an ISO-8601 date", value, path) from exc


# -- strings holding structured values --------------------------------------------------------


def decode_json(value: Any, path: str = "value") -> Any:
    """``io.debezium.data.Json``: a string holding a JSON document."""
    if type(value) is not str:
        raise type_mismatch("a string holding JSON", value, path)
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise type_mismatch("a string holding JSON", value, path) from exc


def decode_uuid(value: Any, path: str = "value") -> uuid.UUID:
    """``io.debezium.data.Uuid``: the canonical text form."""
    if type(value) is not str:
        raise type_mismatch("a UUID string", value, path)
    digits = value.replace("-", "")
    if len(digits) == 32 and digits.isalnum():
        # Without ':' and braces, uuid.UUID(value) computes exactly int(digits, 16); building the
        # object here skips its keyword-heavy constructor.
        try:
            number = int(digits, 16)
        except ValueError as exc:
            raise type_mismatch("a UUID string", value, path) from exc
        result = _new_uuid(uuid.UUID)
        _set_uuid(result, "int", number)
        _set_uuid(result, "is_safe", _UUID_SAFE_UNKNOWN)
        return result
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise type_mismatch("a UUID string", value, path) from exc


def decode_bytes(value: Any, path: str = "value") -> bytes:
    """Connect ``bytes`` without a logical type: base64."""
    if type(value) is not str:
        raise type_mismatch("a base64 string", value, path)
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise type_mismatch("a base64 string", value, path) from exc
