"""Exact decoders (and, for tests, an encoder) of Kafka Connect / Debezium decimals.

A part of the bottom layer of the parser, next to ``_logical`` (the other logical types): each
wire form of a decimal to an exact ``decimal.Decimal`` that keeps its scale, or ``ParseError``:

- ``org.apache.kafka.connect.data.Decimal``: base64 of the big-endian two's complement unscaled
  value, the scale in the schema (``decode_decimal``; ``decimal_decoder`` for one scale, inlined
  per column);
- ``io.debezium.data.VariableScaleDecimal``: ``{"scale": int, "value": base64}``;
- ``decimal.handling.mode=string`` (exact) or ``double`` (rounded to the scale if known).

Ranges: a decimal whose scale is outside ``±MAX_SCALE`` or whose digits are more than Python
converts from an integer (``sys.get_int_max_str_digits()``, 4300 by default) raises
``ParseError("bad_decimal")``, never ``ValueError``/``decimal.InvalidOperation``. The scale bound
is PostgreSQL numeric's largest scale; it also keeps a tiny input such as ``1E+999999999`` from
becoming a gigabyte of digits wherever the value is printed.
"""

from __future__ import annotations

import binascii
import sys
from collections.abc import Callable
from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Final

from cdc_events._errors import ParseError, type_mismatch

# The largest decimal scale, either way (PostgreSQL numeric's largest display scale).
MAX_SCALE: Final = 16_383
# Rounds a double to a scale within MAX_SCALE exactly: enough digits for 1.8e308 at that scale
# (the default context's 28 digits would refuse 1e30 at scale 2).
_ROUNDING: Final = Context(
    prec=MAX_SCALE + 400, rounding=ROUND_HALF_EVEN, Emax=MAX_EMAX, Emin=MIN_EMIN
)

_a2b = binascii.a2b_base64
_from_bytes = int.from_bytes


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
        raise type_mismatch("a {scale, value} struct", value, path)
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
    raise type_mismatch("a decimal string or number", value, path)


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
