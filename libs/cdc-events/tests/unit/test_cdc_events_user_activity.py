"""User-activity events: validated model, ParseError codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from cdc_events import ParseError, UserActivity, parse_user_activity
from cdc_events.testing import make_user_activity
from pydantic import ValidationError


def test_purchase() -> None:
    event = parse_user_activity(
        make_user_activity("purchase", amount=19.99, duration_seconds=3.5, metadata={"page": "/"})
    )
    assert event == UserActivity(
        event_id="evt-1",
        user_id="user-1",
        event_type="purchase",
        timestamp=datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC),
        amount=Decimal("19.99"),
        duration_seconds=3.5,
        metadata={"page": "/"},
    )
    assert event.to_dict()["amount"] == "19.99"
    assert event.to_dict()["timestamp"] == "2024-01-02T03:04:05.123000Z"


def test_amount_as_string_keeps_its_scale() -> None:
    event = parse_user_activity(make_user_activity("purchase", amount="12.50"))
    assert str(event.amount) == "12.50"


def test_view_without_amount_and_offset_timestamp() -> None:
    event = parse_user_activity(make_user_activity("view", timestamp="2024-01-02T05:04:05+02:00"))
    assert event.timestamp == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert event.amount is None


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (make_user_activity("purchase"), "invalid_event"),
        (make_user_activity("purchase", amount=0), "invalid_event"),
        (make_user_activity("purchase", amount="-5"), "invalid_event"),
        (make_user_activity("purchase", amount="abc"), "invalid_event"),
        (make_user_activity("like"), "invalid_event"),
        (make_user_activity(timestamp="yesterday"), "invalid_event"),
        (make_user_activity(timestamp=1704164645), "invalid_event"),  # type: ignore[arg-type]
        (make_user_activity(duration_seconds=-1), "invalid_event"),
        (make_user_activity(metadata=[1]), "invalid_event"),
        (b'{"event_type": "view"}', "missing_field"),
        (b"[]", "not_object"),
        (b"{", "not_json"),
        (b'{"a": "\xff"}', "bad_utf8"),
        (b"{}" + b" " * (1 << 20), "too_large"),
    ],
)
def test_invalid(value: bytes, code: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_user_activity(value)
    assert info.value.code == code


def test_duration_is_read_from_the_wire_name_duration() -> None:
    event = parse_user_activity(make_user_activity("view", duration=12.5))
    assert event.duration_seconds == 12.5
    assert parse_user_activity(make_user_activity("view")).duration_seconds is None


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00+01:00",  # in UTC: before year 1
        "9999-12-31T23:59:59-01:00",  # in UTC: after year 9999
        "0001-01-01T00:59:59.999999+01:00",
        "9999-12-31T23:00:00-23:59",
    ],
)
def test_a_timestamp_outside_years_1_to_9999_in_utc(timestamp: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_user_activity(make_user_activity(timestamp=timestamp))
    assert info.value.code == "invalid_event"
    assert "timestamp" in info.value.message
    assert "years 1 and 9999" in info.value.message


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("0001-01-01T00:00:00-01:00", datetime(1, 1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59+01:00", datetime(9999, 12, 31, 22, 59, 59, tzinfo=UTC)),
        ("0001-01-01T00:00:00", datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamps_at_the_edges_of_the_range(timestamp: str, expected: datetime) -> None:
    assert parse_user_activity(make_user_activity(timestamp=timestamp)).timestamp == expected


def test_an_out_of_range_datetime_given_in_code_is_a_validation_error() -> None:
    moment = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(ValidationError, match="years 1 and 9999"):
        UserActivity(event_id="e", user_id="u", event_type="view", timestamp=moment)


@pytest.mark.parametrize(
    "amount", ["1E+999999999", "1E+999999999999999999999", "1E-20000", "0E+99999999"]
)
def test_an_amount_with_an_absurd_exponent(amount: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_user_activity(make_user_activity("purchase", amount=amount))
    assert info.value.code == "invalid_event"
    assert "amount" in info.value.message


@pytest.mark.parametrize(
    "exc", [OverflowError("boom"), RecursionError("boom"), TypeError("boom")], ids=repr
)
def test_an_unexpected_exception_becomes_invalid_value(
    exc: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise exc

    monkeypatch.setattr(UserActivity, "model_validate", broken)
    with pytest.raises(ParseError) as info:
        parse_user_activity(make_user_activity())
    assert info.value.code == "invalid_value"
    assert info.value.__cause__ is exc
