from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from devstack.truth import user_stats


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
