"""Verification of the statistics against ground truth (``cdc dev verify``).

Named by the service's descriptor (``service.SERVICE.verifier``): the CLI calls :func:`checks`
with the running stack's description; :func:`read_model` and :func:`expected` are also what the
integration tests compare. The truth is :mod:`devstack.truth` (plain SQL over the source
database and the simulator's log of acknowledged user events); the engagement and churn scores
are the documented formula of :func:`stats_aggregator.domain.scores` applied to those true
aggregates,
as of the activity watermark under the clock-skew rule (:func:`devstack.truth.activity_watermark`:
the latest event time, none counted past the check's clock + ``MAX_CLOCK_SKEW_SECONDS``).
Needs the ``verify`` extra (the dev stack).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from devstack import truth
from devstack.verify import Check, VerifyContext, diff_maps
from sink_kit.postgres import make_engine

from stats_aggregator.domain import scores
from stats_aggregator.settings import DEFAULT_MAX_CLOCK_SKEW_S
from stats_aggregator.store import Engine, SourceConnection, read_statistics

SERVICE = "stats-aggregator"
Q6 = Decimal("0.000001")
STATISTICS = ("customer_stats", "product_stats", "order_status_counts", "daily_sales", "user_stats")


def _q6(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Q6)


def read_model(engine: Engine) -> dict[str, dict[Any, Any]]:
    """Every statistic as ``{key: tuple of values}``, in the shape :func:`expected` returns."""
    rows = read_statistics(engine)
    return {
        "customer_stats": {r[0]: tuple(r[1:]) for r in rows["customer_stats"]},
        "product_stats": {r[0]: tuple(r[1:]) for r in rows["product_stats"]},
        "order_status_counts": {r[0]: r[1] for r in rows["order_status_counts"]},
        "daily_sales": {r[0]: (r[1], r[2]) for r in rows["daily_sales"]},
        "user_stats": {r[0]: (*r[1:5], _q6(r[5]), r[6], r[7]) for r in rows["user_stats"]},
    }


def expected(
    source: SourceConnection,
    events: list[dict[str, Any]],
    low_stock_threshold: int = 10,
    *,
    max_clock_skew: timedelta = timedelta(seconds=DEFAULT_MAX_CLOCK_SKEW_S),
    now: datetime | None = None,
) -> dict[str, dict[Any, Any]]:
    """What every statistic must hold, from the source database and the acknowledged events
    (the scores as of the activity watermark bounded by ``now``, the check's clock by default,
    + ``max_clock_skew``: the aggregator's rule)."""
    customers = truth.customer_stats(source)
    products = truth.product_stats(source, low_stock_threshold)
    users = truth.user_stats(events)
    as_of = truth.activity_watermark(events, now or datetime.now(UTC), max_clock_skew)

    def user_row(u: truth.UserStats) -> tuple[Any, ...]:
        assert as_of is not None and u.last_active is not None
        s = scores(u.total_events, u.total_spent, u.last_active, as_of)
        return (
            u.total_events,
            u.total_purchases,
            u.total_spent,
            u.last_active,
            _q6(u.avg_session_duration),
            s.engagement_score,
            s.churn_risk,
        )

    return {
        "customer_stats": {
            c.customer_id: (c.country, c.orders_count, c.paid_or_shipped_count,
                            c.cancelled_count, c.total_spent, c.avg_order_value,
                            c.first_order_at, c.last_order_at)
            for c in customers.values()
        },
        "product_stats": {
            p.product_id: (p.name, p.price, p.stock, p.units_sold, p.revenue, p.low_stock,
                           p.deleted)
            for p in products.values()
        },
        "order_status_counts": truth.order_status_counts(source),
        "daily_sales": {d.day: (d.orders, d.revenue) for d in truth.daily_sales(source).values()},
        "user_stats": {u.user_id: user_row(u) for u in users.values()},
    }  # fmt: skip


def compare(
    engine: Engine,
    source: SourceConnection,
    events: list[dict[str, Any]],
    low_stock_threshold: int = 10,
    *,
    max_clock_skew: timedelta = timedelta(seconds=DEFAULT_MAX_CLOCK_SKEW_S),
) -> list[Check]:
    """One check per statistic: the read model equals the truth, key by key."""
    want = expected(source, events, low_stock_threshold, max_clock_skew=max_clock_skew)
    got = read_model(engine)
    return [diff_maps(SERVICE, name, want[name], got[name]) for name in STATISTICS]


def checks(ctx: VerifyContext) -> list[Check]:
    url = ctx.info.databases[SERVICE]
    env = ctx.info.env_of(SERVICE)
    threshold = int(env.get("LOW_STOCK_THRESHOLD", "10"))
    skew = timedelta(seconds=int(env.get("MAX_CLOCK_SKEW_SECONDS", DEFAULT_MAX_CLOCK_SKEW_S)))
    engine = make_engine(url)
    try:
        with ctx.source() as source:
            return compare(engine, source, ctx.activity_events(), threshold, max_clock_skew=skew)
    finally:
        engine.dispose()
