"""Logical-type decoders: hand-checked values and hypothesis round trips."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from cdc_events import ParseError
from cdc_events._decimal import (
    decode_decimal,
    decode_decimal_text,
    decode_variable_decimal,
    encode_decimal,
)
from cdc_events._logical import (
    decode_date,
    decode_time_us,
    decode_timestamp_ms,
    decode_timestamp_ns,
    decode_timestamp_us,
    decode_zoned_timestamp,
)
from hypothesis import given
from hypothesis import strategies as st

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_decimal_known_encodings() -> None:
    assert decode_decimal("BOI=", 2) == Decimal("12.50")
    assert str(decode_decimal("BOI=", 2)) == "12.50"
    assert decode_decimal("AA==", 2) == Decimal("0.00")
    assert decode_decimal("/w==", 0) == Decimal(-1)
    assert decode_decimal("gA==", 1) == Decimal("-12.8")
    assert decode_variable_decimal({"scale": 5, "value": "+zTR"}) == Decimal("-3.14159")
    assert encode_decimal(Decimal("12.50")) == "BOI="
    assert encode_decimal(Decimal("-12.8")) == "gA=="
    assert base64.b64decode(encode_decimal(Decimal("-128"), 0)) == b"\x80"


def test_decimal_text_modes() -> None:
    assert str(decode_decimal_text("1234567.89", 2)) == "1234567.89"
    assert str(decode_decimal_text(13.99, 2)) == "13.99"
    assert str(decode_decimal_text(12.5, 2)) == "12.50"
    with pytest.raises(ParseError) as info:
        decode_decimal_text("NaN", None)
    assert info.value.code == "bad_decimal"


@given(
    unscaled=st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
    scale=st.integers(min_value=0, max_value=38),
)
def test_decimal_round_trip(unscaled: int, scale: int) -> None:
    value = Decimal(f"{unscaled}E{-scale}")
    decoded = decode_decimal(encode_decimal(value, scale), scale)
    assert decoded == value
    assert decoded.as_tuple().exponent == -scale  # the scale is kept: "12.50", not "12.5"


@given(st.integers(min_value=-(10**20), max_value=10**20), st.integers(0, 20))
def test_variable_scale_round_trip(unscaled: int, scale: int) -> None:
    value = Decimal(f"{unscaled}E{-scale}")
    encoded = {"scale": scale, "value": encode_decimal(value, scale)}
    assert decode_variable_decimal(encoded) == value


def test_timestamps_at_and_around_the_epoch() -> None:
    assert decode_timestamp_ms(0) == EPOCH
    assert decode_timestamp_us(-1) == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert decode_timestamp_ms(-14182939877) == datetime(
        1969, 7, 20, 20, 17, 40, 123000, tzinfo=UTC
    )
    assert decode_timestamp_ns(1_500) == datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert decode_timestamp_ns(-1) == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert decode_timestamp_us(253402300799999999) == datetime(
        9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC
    )
    with pytest.raises(ParseError) as info:
        decode_timestamp_us(253402300800000000)
    assert info.value.code == "type_mismatch"
    assert decode_date(-1) == date(1969, 12, 31)
    assert decode_date(2932896) == date(9999, 12, 31)
    assert decode_time_us(0) == time(0)


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_timestamp_micros_round_trip(moment: datetime) -> None:
    aware = moment.replace(tzinfo=UTC)
    delta = aware - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    assert decode_timestamp_us(micros) == aware
    assert decode_timestamp_ns(micros * 1000 + 999) == aware
    assert decode_date((aware.date() - date(1970, 1, 1)).days) == aware.date()


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, None]),
    ),
    st.integers(0, 9),
)
def test_zoned_timestamp_any_fraction_width(moment: datetime, digits: int) -> None:
    moment = moment.replace(tzinfo=UTC)
    fraction = f"{moment.microsecond:06d}000"[:digits]
    text = (
        f"{moment.year:04d}"
        + moment.strftime("-%m-%dT%H:%M:%S")
        + (f".{fraction}" if digits else "")
        + "Z"
    )
    expected_micro = int((fraction + "000000")[:6]) if digits else 0
    assert decode_zoned_timestamp(text) == moment.replace(microsecond=expected_micro)


def test_zoned_timestamp_offsets_become_utc() -> None:
    assert decode_zoned_timestamp("2024-01-02T05:04:05.5+02:00") == datetime(
        2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC
    )
    for bad in ("2024-01-02T03:04:05", "2024-01-02", "yesterday", "2024-01-02T03:04:05.Z"):
        with pytest.raises(ParseError):
            decode_zoned_timestamp(bad)


def test_far_future_date() -> None:
    assert decode_date((date(2262, 4, 11) - date(1970, 1, 1)).days) == date(2262, 4, 11)
    assert decode_timestamp_ms(int(timedelta(days=365 * 300).total_seconds() * 1000)).year == 2269
