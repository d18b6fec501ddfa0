"""User-activity statistics (pure, no I/O; see ``domain``).

User-activity statistics are sums (``fold_user_events``) of events seen once
(``first_occurrences``), and the engagement score and churn risk are a documented formula
(``scores``) evaluated as of the activity watermark: the latest event time seen, each time
bounded by the processing clock (``bounded_latest``), so one event from a clock-skewed front
end cannot move it into the future.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from stats_aggregator._model import CENTS, ZERO, UserEvent, UserTotals


def first_occurrences(events: Iterable[UserEvent]) -> list[UserEvent]:
    """Each ``event_id`` once (a front end retrying a send, a replay)."""
    seen: set[str] = set()
    out = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            out.append(event)
    return out


def fold_user_events(events: Iterable[UserEvent]) -> dict[str, UserTotals]:
    """Per-user sums of (already deduplicated) events."""
    acc: dict[str, list[Any]] = {}
    for e in events:
        a = acc.get(e.user_id)
        if a is None:
            a = acc[e.user_id] = [0, 0, ZERO, e.timestamp, ZERO, 0]
        a[0] += 1
        if e.event_type == "purchase" and e.amount is not None:
            a[1] += 1
            a[2] += e.amount.quantize(CENTS)
        a[3] = max(a[3], e.timestamp)
        if e.duration is not None:
            a[4] += e.duration
            a[5] += 1
    return {u: UserTotals(u, a[0], a[1], a[2], a[3], a[4], a[5]) for u, a in acc.items()}


def bounded_latest(times: Iterable[datetime], bound: datetime) -> datetime | None:
    """The clock-skew rule for the activity watermark: the latest of ``times``, each capped at
    ``bound`` = the processing clock + MAX_CLOCK_SKEW (an event time past it is a clock-skewed
    or bogus one; the event keeps its own timestamp as ``last_active``). None without events."""
    return max((min(t, bound) for t in times), default=None)


# Engagement score and churn risk, as of the activity watermark (the latest event time seen on
# the topic, bounded by the processing clock: ``bounded_latest``; never the wall clock itself,
# so a replay of events that were not ahead of the clock computes the same values):
#   R (recency)   = max(0, 1 - idle_seconds / RECENCY_HORIZON_S), idle = as_of - last_active
#   F (frequency) = min(1, total_events / FREQUENCY_SATURATION)
#   M (monetary)  = min(1, total_spent / SPEND_SATURATION)
#   engagement_score = round(100 * (0.5 R + 0.3 F + 0.2 M), 1)        in [0, 100]
#   churn_risk       = round(1 - (0.7 R + 0.3 F), 3)                   in [0, 1]
# Rounding is half-up, as PostgreSQL's round(numeric) does in the ``user_stats`` view.
RECENCY_HORIZON_S: Final = 30 * 86_400  # a user idle for 30 days has no recency left
FREQUENCY_SATURATION: Final = 100  # 100 events make a fully frequent user
SPEND_SATURATION: Final = Decimal(500)  # 500.00 spent makes a fully monetary user
W_RECENCY, W_FREQUENCY, W_MONETARY = Decimal("0.5"), Decimal("0.3"), Decimal("0.2")
C_RECENCY, C_FREQUENCY = Decimal("0.7"), Decimal("0.3")


@dataclass(frozen=True, slots=True)
class Scores:
    engagement_score: Decimal
    churn_risk: Decimal


def scores(
    total_events: int, total_spent: Decimal, last_active: datetime, as_of: datetime
) -> Scores:
    idle = as_of - last_active
    idle_s = Decimal(idle.days * 86_400 + idle.seconds) + Decimal(idle.microseconds) / 10**6
    recency = max(Decimal(0), 1 - max(Decimal(0), idle_s) / RECENCY_HORIZON_S)
    frequency = min(Decimal(1), Decimal(total_events) / FREQUENCY_SATURATION)
    monetary = min(Decimal(1), total_spent / SPEND_SATURATION)
    engagement = 100 * (W_RECENCY * recency + W_FREQUENCY * frequency + W_MONETARY * monetary)
    churn = 1 - (C_RECENCY * recency + C_FREQUENCY * frequency)
    return Scores(
        engagement.quantize(Decimal("0.1"), ROUND_HALF_UP),
        churn.quantize(Decimal("0.001"), ROUND_HALF_UP),
    )
