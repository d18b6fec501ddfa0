from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from devstack.truth import SENT_AT, activity_watermark, user_stats


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


def test_an_event_stamped_by_a_lying_clock_counts_from_when_it_was_sent() -> None:
    # The simulator logs when it really sent an event a lying clock stamped (SENT_AT): no
    # consumer processed it earlier, so it bounds the as-of at sent + skew, not at the check's
    # clock + skew; on-time events after that bound are the as-of, as in the aggregator.
    now = datetime(2026, 1, 2, tzinfo=UTC)
    skew = timedelta(seconds=20)

    def ev(ts: str, sent: str | None = None) -> dict[str, str]:
        event = {"event_id": ts, "user_id": "u", "event_type": "view", "timestamp": ts}
        return event if sent is None else event | {SENT_AT: sent}

    lied = ev("2099-06-15T12:00:00.000+00:00", sent="2026-01-01T23:00:00.000+00:00")
    on_time = ev("2026-01-01T23:01:00.000+00:00")
    assert activity_watermark([lied, on_time], now, skew) == datetime(2026, 1, 1, 23, 1, tzinfo=UTC)
    assert activity_watermark([lied], now, skew) == datetime(2026, 1, 1, 23, 0, 20, tzinfo=UTC)
    # Far past: its own time, which moves nothing.
    past = ev("0001-01-01T12:00:00.000+00:00", sent="2026-01-01T23:00:00.000+00:00")
    assert activity_watermark([past, on_time], now, skew) == datetime(2026, 1, 1, 23, 1, tzinfo=UTC)
    # Not sent yet at the check's clock (a log read back later): the check's bound still holds.
    early = ev("2099-06-15T12:00:00.000+00:00", sent="2026-01-03T00:00:00.000+00:00")
    assert activity_watermark([early], now, skew) == now + skew
