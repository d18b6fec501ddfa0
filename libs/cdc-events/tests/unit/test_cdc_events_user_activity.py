"""User-activity events: validated model, ParseError codes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cdc_events import ParseError, UserActivity, parse_user_activity
from cdc_events.testing import make_user_activity


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
