"""The aggregator as a child process on the embedded stack, and its comparison with the truth.

``stats_rig`` starts ``python -m stats_aggregator`` with its own consumer group and sink schema
(reading every topic from the beginning), and compares the read model with ``devstack.truth``
over the whole session's shop database and activity log.
"""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from devstack import ManagedProcess, PostgresServer, free_port, truth, wait_until
from devstack.pytest_plugin import SOURCE_DATABASE, SinkSchema
from sink_kit.postgres import make_engine
from stats_aggregator.domain import scores
from stats_aggregator.settings import DEFAULT_TOPICS

THRESHOLD = 10
Q6 = Decimal("0.000001")


class StatsRig:
    def __init__(
        self,
        bootstrap: str,
        group: str,
        schema: SinkSchema,
        source: PostgresServer,
        activity_log: Path,
        log_dir: Path,
    ) -> None:
        self.schema = schema
        self.source = source
        self.activity_log = activity_log
        self.env: dict[str, str] = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_GROUP_ID": group,
            "DATABASE_URL": schema.url,
            "HEALTH_PORT": str(free_port()),
            "LOG_FORMAT": "console",
            "BATCH_SIZE": "2000",
            "BATCH_MAX_WAIT_MS": "200",
            "LOW_STOCK_THRESHOLD": str(THRESHOLD),
            # Group joins wait for departed members' session timeout: keep it short in tests.
            "KAFKA_CONSUMER_EXTRA": orjson.dumps(
                {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
            ).decode(),
        }
        self.process = ManagedProcess(
            "stats-aggregator",
            [sys.executable, "-m", "stats_aggregator"],
            log_dir / f"stats-aggregator-{group}.log",
            env=self.env,
        )
        self.engine = make_engine(schema.url)

    def start(self, **env: str) -> None:
        self.process.env = {**_base_env(), **self.env, **env}
        self.process.start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until ``/readyz`` answers 200: migrated, subscribed, database reachable."""
        url = f"http://127.0.0.1:{self.env['HEALTH_PORT']}/readyz"

        def ready() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        wait_until(ready, timeout, message="aggregator ready")

    def read_model(self) -> dict[str, Any]:
        with self.engine.connect() as conn:

            def rows(sql: str) -> list[Any]:
                return list(conn.execute(sa.text(sql)))

            return {
                "customers": {
                    r[0]: tuple(r[1:])
                    for r in rows(
                        "SELECT customer_id, country, orders_count, paid_or_shipped_count, "
                        "cancelled_count, total_spent, avg_order_value, first_order_at, "
                        "last_order_at FROM customer_stats"
                    )
                },
                "products": {
                    r[0]: tuple(r[1:])
                    for r in rows(
                        "SELECT product_id, name, price, stock, units_sold, revenue, low_stock, "
                        "deleted FROM product_stats"
                    )
                },
                "statuses": dict(rows("SELECT status, count FROM order_status_counts")),
                "days": {r[0]: (r[1], r[2]) for r in rows("SELECT * FROM daily_sales")},
                "users": {
                    r[0]: (*r[1:5], _q6(r[5]), r[6], r[7])
                    for r in rows(
                        "SELECT user_id, total_events, total_purchases, total_spent, "
                        "last_active, avg_session_duration, engagement_score, churn_risk "
                        "FROM user_stats"
                    )
                },
            }

    def truth(self) -> dict[str, Any]:
        conn = self.source.connect(SOURCE_DATABASE)
        try:
            customers = truth.customer_stats(conn)
            products = truth.product_stats(conn, THRESHOLD)
            statuses = truth.order_status_counts(conn)
            days = truth.daily_sales(conn)
        finally:
            conn.close()
        events = truth.read_activity_log(self.activity_log)
        users = truth.user_stats(events)
        as_of = max((datetime.fromisoformat(e["timestamp"]) for e in events), default=None)
        return {
            "customers": {
                c.customer_id: (c.country, c.orders_count, c.paid_or_shipped_count,
                                c.cancelled_count, c.total_spent, c.avg_order_value,
                                c.first_order_at, c.last_order_at)
                for c in customers.values()
            },
            "products": {
                p.product_id: (p.name, p.price, p.stock, p.units_sold, p.revenue, p.low_stock,
                               p.deleted)
                for p in products.values()
            },
            "statuses": statuses,
            "days": {d.day: (d.orders, d.revenue) for d in days.values()},
            "users": {
                u.user_id: (u.total_events, u.total_purchases, u.total_spent, u.last_active,
                            _q6(u.avg_session_duration),
                            *_scores(u, as_of))
                for u in users.values()
            },
        }  # fmt: skip

    def diff(self) -> dict[str, Any]:
        """Per statistic, the keys whose values differ: (read model, truth)."""
        try:
            got = self.read_model()
        except sa.exc.ProgrammingError:
            return {"read model": "no tables yet"}
        want = self.truth()
        out: dict[str, Any] = {}
        for name in want:
            keys = set(got[name]) | set(want[name])
            bad = {
                k: (got[name].get(k), want[name].get(k))
                for k in keys
                if got[name].get(k) != want[name].get(k)
            }
            if bad:
                out[name] = dict(sorted(bad.items(), key=lambda kv: str(kv[0]))[:5]) | {
                    "#differing": len(bad)
                }
        return out

    def assert_converges(self, timeout: float = 120.0) -> None:
        try:
            wait_until(lambda: not self.diff(), timeout, interval=1.0, message="statistics = truth")
        except TimeoutError:
            print(self.process.log_tail(80))
            raise AssertionError(f"read model differs from the truth: {self.diff()}") from None
        sizes = {name: len(rows) for name, rows in self.truth().items()}
        assert sizes["customers"] and sizes["products"] and sizes["days"] and sizes["users"]
        print(f"read model equals the truth: {sizes}")

    def close(self) -> None:
        self.process.stop()
        self.engine.dispose()


def _q6(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Q6)


def _scores(u: Any, as_of: datetime | None) -> tuple[Decimal, Decimal]:
    assert as_of is not None and u.last_active is not None
    s = scores(u.total_events, u.total_spent, u.last_active, as_of)
    return s.engagement_score, s.churn_risk


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DATABASE_"))}


@pytest.fixture
def stats_rig(
    kafka_bootstrap: str,
    kafka_broker: Any,
    kafka_group: str,
    sink_schema: SinkSchema,
    source_postgres: PostgresServer,
    activity_log: Path,
    debezium_relay: Any,
    tmp_path: Path,
) -> Iterator[StatsRig]:
    kafka_broker.create_topics(list(DEFAULT_TOPICS), 3)
    rig = StatsRig(
        kafka_bootstrap, kafka_group, sink_schema, source_postgres, activity_log, tmp_path
    )
    yield rig
    rig.close()
