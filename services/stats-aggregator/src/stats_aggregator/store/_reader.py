"""The statistics as the operator CLI reads them (``cdc stats customer|product|user ID``).

One row of a statistics view per call (``_read_model.read_one``), the user's with the activity
watermark it is as of; an unreachable database or a database without the views becomes a
``StatsAggregatorError`` an operator can act on.
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa
from consumer_runtime import RetryableError
from sink_kit.postgres import db_errors, make_engine

from stats_aggregator.errors import StatsAggregatorError
from stats_aggregator.store._read_model import read_one, read_watermark

__all__ = ["StatsReader"]


class StatsReader:
    """Read access to the statistics for operators (the ``cdc stats`` commands)."""

    _VIEWS: Final = {
        "customer": ("customer_stats", "customer_id"),
        "product": ("product_stats", "product_id"),
        "user": ("user_stats", "user_id"),
    }

    def __init__(self, database_url: str) -> None:
        self.engine = make_engine(database_url, pool_size=1, max_overflow=0)

    def get(self, kind: str, key: int | str) -> dict[str, Any] | None:
        """The statistics row of one customer, product or user; None if it has none."""
        view, column = self._VIEWS[kind]
        try:
            with db_errors(f"read {view}"), self.engine.connect() as conn:
                row = read_one(conn, view, column, key)
                if row is not None and kind == "user":
                    row["as_of"] = read_watermark(conn)
                return row
        except RetryableError as exc:
            raise StatsAggregatorError(
                f"{exc}: check DATABASE_URL and that it is reachable"
            ) from exc
        except sa.exc.ProgrammingError as exc:
            raise StatsAggregatorError(
                f"{view} not found: is DATABASE_URL the aggregator's database (and schema)?"
            ) from exc
        finally:
            self.engine.dispose()
