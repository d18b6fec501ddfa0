"""The whole embedded stack as one object: broker, source and sink PostgreSQL, AWS emulator and
the Debezium relay, started in dependency order and stopped in reverse."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

from devstack._aws import AwsEmulator
from devstack._broker import Broker
from devstack._postgres import PostgresServer
from devstack._relay import DebeziumRelay
from devstack._shop import install_schema, seed

SOURCE_DATABASE = "shop"
SINK_DATABASE = "sink"
TOPIC_PREFIX = "dbserver1"


class Stack:
    def __init__(
        self,
        work_dir: Path,
        *,
        partitions: int = 3,
        seed_customers: int = 50,
        seed_products: int = 100,
        rng: random.Random | None = None,
        relay_options: dict[str, Any] | None = None,
    ) -> None:
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(work_dir)
        self.source = PostgresServer("source", work_dir, logical=True)
        self.sink = PostgresServer("sink", work_dir)
        self.aws = AwsEmulator(work_dir)
        self.partitions = partitions
        self.seed_customers = seed_customers
        self.seed_products = seed_products
        self.rng = rng or random.Random()
        self.relay_options = relay_options or {}
        self.relay: DebeziumRelay | None = None
        self.seeded_rows: dict[str, int] = {}

    @property
    def source_dsn(self) -> str:
        return self.source.dsn(SOURCE_DATABASE)

    def start_servers(self) -> None:
        self.broker.start()
        self.source.start()
        self.source.create_database(SOURCE_DATABASE)
        self.sink.start()
        self.sink.create_database(SINK_DATABASE)
        self.aws.start()

    def seed_source(self) -> dict[str, int]:
        """Install the shop schema and the initial rows Debezium will snapshot."""
        conn = self.source.connect(SOURCE_DATABASE)
        try:
            install_schema(conn)
            seed(conn, self.rng, self.seed_customers, self.seed_products)
            with conn.cursor() as cur:
                for table in ("customers", "products", "orders", "order_items"):
                    cur.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - fixed names
                    row = cur.fetchone()
                    self.seeded_rows[table] = int(row[0]) if row else 0
        finally:
            conn.close()
        return self.seeded_rows

    def launch_relay(self) -> DebeziumRelay:
        self.relay = DebeziumRelay.create(
            self.work_dir / "relay",
            bootstrap_servers=self.broker.bootstrap,
            db_port=self.source.port,
            db_name=SOURCE_DATABASE,
            topic_prefix=TOPIC_PREFIX,
            partitions=self.partitions,
            **self.relay_options,
        )
        self.relay.launch()
        return self.relay

    def service_env(self) -> dict[str, str]:
        """Environment a consumer service needs to run against this stack."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "DATABASE_URL": self.sink.url(SINK_DATABASE, driver="postgresql+psycopg2"),
            **self.aws.env,
        }

    def stop(self) -> None:
        """Stop everything in reverse order; keep going past failures so nothing is left."""
        for stop in (
            (self.relay.stop if self.relay else None),
            self.aws.stop,
            self.sink.stop,
            self.source.stop,
            self.broker.stop,
        ):
            if stop is not None:
                with contextlib.suppress(Exception):
                    stop()
