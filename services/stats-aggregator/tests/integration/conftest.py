"""The aggregator as a child process on the embedded stack, and its comparison with the truth.

``stats_rig`` starts ``python -m stats_aggregator`` with its own consumer group and sink schema
(reading every topic from the beginning), and compares the read model with ``devstack.truth``
over the whole session's shop database and activity log.
"""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from devstack import ManagedProcess, PostgresServer, free_port, truth, wait_until
from devstack.pytest_plugin import SOURCE_DATABASE, SinkSchema
from sink_kit.postgres import make_engine
from stats_aggregator import verify
from stats_aggregator.settings import DEFAULT_TOPICS

THRESHOLD = 10


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
        return verify.read_model(self.engine)

    def truth(self) -> dict[str, Any]:
        conn = self.source.connect(SOURCE_DATABASE)
        try:
            return verify.expected(conn, truth.read_activity_log(self.activity_log), THRESHOLD)
        finally:
            conn.close()

    def diff(self) -> dict[str, str]:
        """Per statistic that differs, the verifier's description of the first differences."""
        conn = self.source.connect(SOURCE_DATABASE)
        try:
            events = truth.read_activity_log(self.activity_log)
            checks = verify.compare(self.engine, conn, events, THRESHOLD)
        except sa.exc.ProgrammingError:
            return {"read model": "no tables yet"}
        finally:
            conn.close()
        return {c.name: c.detail for c in checks if not c.ok}

    def assert_converges(self, timeout: float = 120.0) -> None:
        try:
            wait_until(lambda: not self.diff(), timeout, interval=1.0, message="statistics = truth")
        except TimeoutError:
            print(self.process.log_tail(80))
            raise AssertionError(f"read model differs from the truth: {self.diff()}") from None
        sizes = {name: len(rows) for name, rows in self.truth().items()}
        assert all(sizes.values()), sizes
        print(f"read model equals the truth: {sizes}")

    def close(self) -> None:
        self.process.stop()
        self.engine.dispose()


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
