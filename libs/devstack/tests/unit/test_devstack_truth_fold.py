from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from devstack.truth import activity_watermark, user_stats


def test_user_stats_fold_dedupes_by_event_id_and_sums_exactly() -> None:
    events = [
        {
            "event_id": "a",
            "user_id": "u1",
            "event_type": "view",
            "duration": 10.5,
            "timestamp": "2026-01-01T10:00:00.000+00:00",
        },
        {
            "event_id": "b",
            "user_id": "u1",
            "event_type": "purchase",
            "amount": 19.99,
            "timestamp": "2026-01-01T11:00:00.000+00:00",
        },
        {
            "event_id": "b",
            "user_id": "u1",
            "event_type": "purchase",
            "amount": 19.99,
            "timestamp": "2026-01-01T11:00:00.000+00:00",
        },  # redelivered: counted once
        {
            "event_id": "c",
            "user_id": "u1",
            "event_type": "purchase",
            "amount": 0.01,
            "timestamp": "2026-01-01T09:00:00.000+00:00",
        },
        {
            "event_id": "d",
            "user_id": "u2",
            "event_type": "click",
            "duration": 1.5,
            "timestamp": "2026-01-02T00:00:00.000+00:00",
        },
    ]
    stats = user_stats(events)
    u1 = stats["u1"]
    assert (u1.total_events, u1.total_purchases) == (3, 2)
    assert u1.total_spent == Decimal("20.00")
    assert u1.last_active == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert u1.avg_session_duration == Decimal("10.5")
    assert stats["u2"].avg_session_duration == Decimal("1.5")
    assert stats["u2"].total_spent == Decimal("0.00")


def test_activity_watermark_takes_no_event_time_past_now_plus_the_skew() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    skew = timedelta(minutes=5)

    def ev(ts: str) -> dict[str, str]:
        return {"event_id": ts, "user_id": "u", "event_type": "view", "timestamp": ts}

    on_time = [ev("2026-01-01T10:00:00.000+00:00"), ev("2026-01-01T11:00:00.000+00:00")]
    assert activity_watermark(on_time, now, skew) == datetime(2026, 1, 1, 11, tzinfo=UTC)
    skewed = [*on_time, ev("2099-01-01T00:00:00.000+00:00")]
    assert activity_watermark(skewed, now, skew) == now + skew
    within = [*on_time, ev("2026-01-02T00:04:00+00:00")]  # 4 minutes ahead: believed
    assert activity_watermark(within, now, skew) == datetime(2026, 1, 2, 0, 4, tzinfo=UTC)
    assert activity_watermark([], now, skew) is None
