"""The reads behind ``cdc dev verify`` (``verify``): every statistic's rows as stored.

Queries only: ``verify.read_model`` shapes the rows like the truth it compares them with.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg2.extensions
import sqlalchemy as sa
from sqlalchemy.engine import Engine

__all__ = ["SourceConnection", "read_statistics"]

#: A connection to the source database (``devstack.verify.VerifyContext.source``).
SourceConnection = psycopg2.extensions.connection

# Each statistic's key first, then its values in the order ``verify.expected`` gives them.
_STATISTICS: Final = {
    "customer_stats": (
        "SELECT customer_id, country, orders_count, paid_or_shipped_count, "
        "cancelled_count, total_spent, avg_order_value, first_order_at, "
        "last_order_at FROM customer_stats"
    ),
    "product_stats": (
        "SELECT product_id, name, price, stock, units_sold, revenue, low_stock, "
        "deleted FROM product_stats"
    ),
    "order_status_counts": "SELECT status, count FROM order_status_counts",
    "daily_sales": "SELECT day, orders, revenue FROM daily_sales",
    "user_stats": (
        "SELECT user_id, total_events, total_purchases, total_spent, "
        "last_active, avg_session_duration, engagement_score, churn_risk "
        "FROM user_stats"
    ),
}


def read_statistics(engine: Engine) -> dict[str, list[Any]]:
    """The rows of every statistic (``customer_stats``, ``product_stats``,
    ``order_status_counts``, ``daily_sales``, ``user_stats``), read on one connection."""
    with engine.connect() as conn:
        return {name: list(conn.execute(sa.text(sql))) for name, sql in _STATISTICS.items()}
