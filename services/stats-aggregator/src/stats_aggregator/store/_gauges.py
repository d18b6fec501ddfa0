"""What the aggregator's store holds that an operator watches, read when ``/metrics`` is
scraped: the outbox backlogs, the products below the low-stock threshold, the pool's use.

Read at scrape time, not kept by the write path: the figures are those of the committed
database (another replica's batches included), and a scrape every 15-30 s costs three indexed
counts. A scrape while the database is down serves the pool's figures only (the counts are
left out, not shown as zero, so a dashboard shows a gap instead of a false "caught up").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import sqlalchemy as sa
import structlog
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sink_kit.metrics import PoolCollector
from sqlalchemy.engine import Engine

from stats_aggregator.settings import SERVICE_NAME
from stats_aggregator.store._outbox import UNPROJECTED

__all__ = ["BACKLOG_SQL", "StoreGauges"]

#: Rows waiting in each outbox: alerts not yet published (partial index
#: ``low_stock_alerts_unpublished``), products not yet written to the DynamoDB projection
#: (partial index ``st_products_unprojected``); then the products below the threshold now.
BACKLOG_SQL: Final = (  # constants only, no input
    "SELECT (SELECT count(*) FROM low_stock_alerts WHERE published_at IS NULL), "  # noqa: S608
    f"(SELECT count(*) FROM st_products WHERE {UNPROJECTED}), "
    "(SELECT count(*) FROM product_stats WHERE low_stock AND NOT deleted)"
)
# A scrape must answer within Prometheus' timeout (10 s by default) even when the database
# hangs: the counts give up after 3 s.
_TIMEOUT_MS: Final = 3000

_log = structlog.get_logger("stats_aggregator")


class StoreGauges(Collector):
    """``cdc_outbox_backlog{outbox}``, ``cdc_low_stock_products`` and the pool's gauges."""

    def __init__(self, engine: Engine, *, projection: bool) -> None:
        self._engine = engine
        self._projection = projection
        self._pool = PoolCollector(engine, SERVICE_NAME)

    def collect(self) -> Iterable[Metric]:
        yield from self._pool.collect()
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.text(f"SET LOCAL statement_timeout = {_TIMEOUT_MS}"))
                alerts, unprojected, low = conn.execute(sa.text(BACKLOG_SQL)).one()
        except sa.exc.SQLAlchemyError as exc:
            _log.warning("store gauges unavailable", error=str(exc).splitlines()[0])
            return
        backlog, products = _families()
        backlog.add_metric([SERVICE_NAME, "low_stock_alerts"], float(alerts))
        if self._projection:
            backlog.add_metric([SERVICE_NAME, "inventory_projection"], float(unprojected))
        products.add_metric([SERVICE_NAME], float(low))
        yield from (backlog, products)

    def describe(self) -> Iterable[Metric]:
        """The families without samples: no database query at registration."""
        return [*self._pool.describe(), *_families()]


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    backlog = GaugeMetricFamily(
        "cdc_outbox_backlog",
        "Rows waiting in an outbox: low_stock_alerts (alerts not yet published), "
        "inventory_projection (products not yet written to the DynamoDB projection).",
        labels=["service", "outbox"],
    )
    products = GaugeMetricFamily(
        "cdc_low_stock_products",
        "Products whose stock is below LOW_STOCK_THRESHOLD now (deleted products excluded).",
        labels=["service"],
    )
    return backlog, products
