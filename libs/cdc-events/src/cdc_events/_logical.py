"""Exact decoders (and, for tests, encoders) of Kafka Connect / Debezium logical types.

The bottom layer of the parser: one small function per wire representation, each turning a JSON
value into the Python value it stands for (``decimal.Decimal``, ``datetime`` in UTC, ``date``,
``time``, ``uuid.UUID``, parsed JSON) or raising ``ParseError``. ``_schema`` picks the function
from a field's schema once per schema; ``_column_types`` picks it from the registry for
schemaless events. No I/O, no state.

Times have microsecond resolution in Python: nanosecond values (``NanoTimestamp``, ``NanoTime``,
a ``ZonedTimestamp`` with 7-9 fraction digits) are truncated toward the past to the microsecond.
PostgreSQL and MySQL store at most microseconds, so nothing is lost for those sources.

Ranges: a value of the right JSON type that its Python type cannot hold raises ``ParseError``
too, never ``OverflowError``/``ValueError``/``decimal.InvalidOperation``: timestamps and dates
outside years 1-9999 in UTC, times outside [00:00, 24:00) (``type_mismatch``); decimals whose
scale is outside ``±MAX_SCALE`` or whose digits are more than Python converts from an integer
(``sys.get_int_max_str_digits()``, 4300 by default) (``bad_decimal``). The scale bound is
PostgreSQL numeric's largest scale; it also keeps a tiny input such as ``1E+999999999`` from
becoming a gigabyte of digits wherever the value is printed.
"""

from __future__ import annotations

import binascii
import re
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Final

import orjson

from cdc_events._errors import ParseError

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DATE: Final = date(1970, 1, 1)
_EPOCH_ORDINAL: Final = EPOCH_DATE.toordinal()
_DAY_US: Final = 86_400_000_000
_MS: Final = timedelta(milliseconds=1)
# Epoch milliseconds a datetime can hold: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z.
MIN_EPOCH_MS: Final = (datetime.min.replace(tzinfo=UTC) - EPOCH) // _MS
MAX_EPOCH_MS: Final = (datetime.max.replace(tzinfo=UTC) - EPOCH) // _MS
# The largest decimal scale, either way (PostgreSQL numeric's largest display scale).
MAX_SCALE: Final = 16_383
# Rounds a double to a scale within MAX_SCALE exactly: enough digits for 1.8e308 at that scale
# (the default context's 28 digits would refuse 1e30 at scale 2).
_ROUNDING: Final = Context(
    prec=MAX_SCALE + 400, rounding=ROUND_HALF_EVEN, Emax=MAX_EMAX, Emin=MIN_EMIN
)

# Debezium's default ``unavailable.value.placeholder`` for TOASTed values it cannot see, in each
# shape it takes on the wire: the string itself (text, json, enums), base64 of its bytes (bytea,
# precise decimals), a one-element array (text[]) and the array of its character codes (int[]).
PLACEHOLDER: Final = "__debezium_unavailable_value"
PLACEHOLDER_B64: Final = binascii.b2a_base64(PLACEHOLDER.encode(), newline=False).decode()
PLACEHOLDER_LIST: Final = [PLACEHOLDER]
PLACEHOLDER_CODES: Final = [ord(c) for c in PLACEHOLDER]

_a2b = binascii.a2b_base64
_from_bytes = int.from_bytes
_new_uuid = object.__new__
_set_uuid = object.__setattr__
_UUID_SAFE_UNKNOWN: Final = uuid.SafeUUID.unknown

_ZONED = re.compile(r"^-?\d{4,6}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d(:\d\d)?)$")
_ZONED_TIME = re.compile(r"^\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d(:\d\d)?)$")


def _mismatch(what: str, value: Any, path: str) -> ParseError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ParseError("type_mismatch", f"{path}: expected {what}, got {shown}")


def is_placeholder(value: Any) -> bool:
    """True for every wire shape of the TOAST placeholder."""
    if type(value) is str:
        return value in (PLACEHOLDER, PLACEHOLDER_B64)
    if type(value) is list:
        return value in (PLACEHOLDER_LIST, PLACEHOLDER_CODES)
    return False


# -- decimals ---------------------------------------------------------------------------------


def _scale_error(scale: int, path: str) -> ParseError:
    return ParseError(
        "bad_decimal", f"{path}: scale {scale!r:.40} is outside [-{MAX_SCALE}, {MAX_SCALE}]"
    )


def in_decimal_range(value: Decimal) -> bool:
    """True for a finite decimal whose scale (minus its exponent) is within ``±MAX_SCALE``."""
    exponent = value.as_tuple().exponent
    return type(exponent) is int and -MAX_SCALE <= exponent <= MAX_SCALE


def _unscaled(b64: Any, path: str) -> int:
    if type(b64) is not str or not b64:
        raise ParseError("bad_decimal", f"{path}: expected a base64 string, got {b64!r:.80}")
    try:
        raw = binascii.a2b_base64(b64, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise ParseError("bad_decimal", f"{path}: {b64!r:.80} is not valid base64 ({exc})") from exc
    if not raw:
        raise ParseError("bad_decimal", f"{path}: empty decimal bytes")
    return int.from_bytes(raw, "big", signed=True)


def decimal_from_unscaled(unscaled: int, scale: int) -> Decimal:
    """``unscaled * 10**-scale`` exactly, keeping the scale (``1250, 2`` -> ``12.50``)."""
    # Construction from a string is exact; arithmetic would round to the context precision.
    return Decimal(f"{unscaled}E{-scale}")


def _exact(unscaled: int, scale: int, path: str) -> Decimal:
    """``decimal_from_unscaled`` in the supported range, else ``bad_decimal`` saying why."""
    if not -MAX_SCALE <= scale <= MAX_SCALE:
        raise _scale_error(scale, path)
    try:
        return decimal_from_unscaled(unscaled, scale)
    except ValueError as exc:  # str() of an int with more digits than the interpreter allows
        raise ParseError(
            "bad_decimal",
            f"{path}: a decimal of {(unscaled.bit_length() + 8) // 8} bytes has more than "
            f"{sys.get_int_max_str_digits()} digits (sys.get_int_max_str_digits())",
        ) from exc


def decode_decimal(b64: Any, scale: int, path: str = "value") -> Decimal:
    """``org.apache.kafka.connect.data.Decimal``: base64 big-endian two's complement."""
    return _exact(_unscaled(b64, path), scale, path)


def decimal_decoder(scale: int) -> Callable[[Any, str], Decimal]:
    """``decode_decimal`` for one scale, with the common case inlined (it runs per column)."""
    if not -MAX_SCALE <= scale <= MAX_SCALE:

        def out_of_range(b64: Any, path: str) -> Decimal:
            return decode_decimal(b64, scale, path)  # bad_decimal, whatever the value

        return out_of_range
    exponent = f"E{-scale}"

    def decode(b64: Any, path: str) -> Decimal:
        if type(b64) is str:
            try:
                raw = _a2b(b64, strict_mode=True)
            except (binascii.Error, ValueError):
                raw = b""
            if raw:
                try:
                    return Decimal(str(_from_bytes(raw, "big", signed=True)) + exponent)
                except ValueError:  # too many digits for str(): the precise error below
                    pass
        return decode_decimal(b64, scale, path)  # raises the precise error

    return decode


def decode_variable_decimal(value: Any, path: str = "value") -> Decimal:
    """``io.debezium.data.VariableScaleDecimal``: ``{"scale": int, "value": base64}``."""
    if type(value) is not dict:
        raise _mismatch("a {scale, value} struct", value, path)
    scale = value.get("scale")
    if type(scale) is not int:
        raise ParseError("bad_decimal", f"{path}.scale: expected an integer, got {scale!r:.80}")
    b64 = value.get("value")
    if type(b64) is str and -MAX_SCALE <= scale <= MAX_SCALE:
        try:
            raw = _a2b(b64, strict_mode=True)
        except (binascii.Error, ValueError):
            raw = b""
        if raw:
            try:
                return Decimal(f"{_from_bytes(raw, 'big', signed=True)}E{-scale}")
            except ValueError:  # too many digits for str(): the precise error below
                pass
    return _exact(_unscaled(b64, path + ".value"), scale, path)  # raises


def decode_decimal_text(value: Any, scale: int | None, path: str = "value") -> Decimal:
    """``decimal.handling.mode=string`` (exact) or ``double`` (rounded to ``scale`` if known)."""
    if type(value) is str:
        try:
            result = Decimal(value)
        except ArithmeticError as exc:
            raise ParseError(
                "bad_decimal", f"{path}: {value!r:.80} is not a decimal number"
            ) from exc
        if not result.is_finite():
            raise ParseError("bad_decimal", f"{path}: {value!r:.80} is not a finite number")
        return _in_range(result, value, path)
    if type(value) is float or type(value) is int:
        # repr() is the shortest text that reads back as the same double: "13.99", not the
        # binary expansion Decimal(float) would give.
        result = Decimal(repr(value))
        if not result.is_finite():
            raise ParseError("bad_decimal", f"{path}: {value!r} is not a finite number")
        if scale is not None:
            try:
                result = result.quantize(Decimal(1).scaleb(-scale, _ROUNDING), context=_ROUNDING)
            except ArithmeticError as exc:
                raise ParseError(
                    "bad_decimal", f"{path}: {value!r} does not fit scale {scale!r:.40}"
                ) from exc
        return _in_range(result, value, path)
    raise _mismatch("a decimal string or number", value, path)


def _in_range(result: Decimal, value: Any, path: str) -> Decimal:
    if in_decimal_range(result):
        return result
    raise ParseError(
        "bad_decimal",
        f"{path}: {value!r:.80} is out of range (its scale is outside [-{MAX_SCALE}, {MAX_SCALE}])",
    )


def encode_decimal(value: Decimal, scale: int | None = None) -> str:
    """Inverse of ``decode_decimal`` (Java ``BigInteger.toByteArray`` + base64), for tests.

    ``scale`` defaults to the value's own exponent; a value that does not fit it raises
    ``ValueError`` (the connector would have rounded it before it reached Kafka).
    """
    if not value.is_finite():
        raise ValueError(f"{value} is not finite")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    target = -scale if scale is not None else exponent
    magnitude = int("".join(map(str, digits)) or "0")
    shift = exponent - target
    if shift >= 0:
        unscaled = magnitude * 10**shift
    else:
        unscaled, rest = divmod(magnitude, 10**-shift)
        if rest:
            raise ValueError(f"{value} does not fit scale {-target}")
    if sign:
        unscaled = -unscaled
    length = (unscaled if unscaled >= 0 else ~unscaled).bit_length() // 8 + 1
    raw = unscaled.to_bytes(length, "big", signed=True)
    return binascii.b2a_base64(raw, newline=False).decode()


# -- dates and times --------------------------------------------------------------------------


def _int(value: Any, what: str, path: str) -> int:
    if type(value) is not int:
        raise _mismatch(what, value, path)
    return value


def decode_date(value: Any, path: str = "value") -> date:
    """``Date`` / ``io.debezium.time.Date``: days since 1970-01-01 (negative before)."""
    days = _int(value, "days since the epoch (integer)", path)
    try:
        return date.fromordinal(_EPOCH_ORDINAL + days)
    except (OverflowError, ValueError) as exc:
        raise _mismatch("a date between years 1 and 9999", value, path) from exc


def _from_epoch_us(us: int, value: Any, path: str) -> datetime:
    try:
        return EPOCH + timedelta(0, 0, us)  # positional: keyword parsing costs a third
    except OverflowError as exc:
        raise _mismatch("a timestamp between years 1 and 9999", value, path) from exc


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
        raise _mismatch("an ISO-8601 timestamp with offset", value, path)
    try:
        # Python 3.11 reads 1-9 fraction digits (truncating past 6), "Z" and offsets.
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _mismatch("an ISO-8601 timestamp with offset", value, path) from exc
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise _mismatch("a timestamp between years 1 and 9999", value, path) from exc


def decode_timestamp_text(value: Any, path: str = "value") -> datetime:
    """An ISO-8601 timestamp; one without an offset is taken as UTC (Debezium's convention)."""
    if type(value) is not str:
        raise _mismatch("an ISO-8601 timestamp", value, path)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _mismatch("an ISO-8601 timestamp", value, path) from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise _mismatch("a timestamp between years 1 and 9999", value, path) from exc


def _time_from_us(us: int, value: Any, path: str) -> time:
    if not 0 <= us < _DAY_US:
        # PostgreSQL's time accepts 24:00:00, which datetime.time cannot hold.
        raise _mismatch("a time of day in [00:00, 24:00)", value, path)
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
        raise _mismatch("an ISO-8601 time with offset", value, path)
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise _mismatch("an ISO-8601 time with offset", value, path) from exc


def decode_time_text(value: Any, path: str = "value") -> time:
    if type(value) is not str:
        raise _mismatch("an ISO-8601 time", value, path)
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise _mismatch("an ISO-8601 time", value, path) from exc


def decode_date_text(value: Any, path: str = "value") -> date:
    if type(value) is not str:
        raise _mismatch("an ISO-8601 date", value, path)
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _mismatch("an ISO-8601 date", value, path) from exc


# -- strings holding structured values --------------------------------------------------------


def decode_json(value: Any, path: str = "value") -> Any:
    """``io.debezium.data.Json``: a string holding a JSON document."""
    if type(value) is not str:
        raise _mismatch("a string holding JSON", value, path)
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise _mismatch("a string holding JSON", value, path) from exc


def decode_uuid(value: Any, path: str = "value") -> uuid.UUID:
    """``io.debezium.data.Uuid``: the canonical text form."""
    if type(value) is not str:
        raise _mismatch("a UUID string", value, path)
    digits = value.replace("-", "")
    if len(digits) == 32 and digits.isalnum():
        # Without ':' and braces, uuid.UUID(value) computes exactly int(digits, 16); building the
        # object here skips its keyword-heavy constructor.
        try:
            number = int(digits, 16)
        except ValueError as exc:
            raise _mismatch("a UUID string", value, path) from exc
        result = _new_uuid(uuid.UUID)
        _set_uuid(result, "int", number)
        _set_uuid(result, "is_safe", _UUID_SAFE_UNKNOWN)
        return result
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise _mismatch("a UUID string", value, path) from exc


def decode_bytes(value: Any, path: str = "value") -> bytes:
    """Connect ``bytes`` without a logical type: base64."""
    if type(value) is not str:
        raise _mismatch("a base64 string", value, path)
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise _mismatch("a base64 string", value, path) from exc
