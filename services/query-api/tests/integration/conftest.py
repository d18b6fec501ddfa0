"""One seeded dataset and one real server per test module.

``stack`` (module scope) seeds every read model with the services' own code, each in a private
schema, table or namespace of the session's servers: the statistics and the ``inventory-realtime``
projection through ``StatsSink`` (its migrations), the event store through ``EventStoreSink``,
the search index through ``SearchIndexSink`` (over in-memory messages in the real consumer loop,
``consumer_runtime.testing.SinkHarness``), and the lake through the flusher's committer and its
report materialization on a real SQL catalog and the emulator's S3. ``server`` serves
``create_app`` with uvicorn on a free port, in a thread of the test process.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from analytics_flusher import OrderChange
from analytics_flusher.store._iceberg import (
    ORDERS_CHANGES,
    CatalogConfig,
    ExactlyOnceCommitter,
    ensure_changes_tables,
    materialize_reports,
    open_catalog,
    order_rows,
)
from cdc_events.testing import make_change, make_user_activity
from consumer_runtime import CommitStrategy, TopicPartition
from consumer_runtime.testing import SinkHarness
from devstack import AwsEmulator, PostgresServer, free_port
from event_store_writer import EventDecoder, EventStoreSink, StoreMetrics, upgrade_schema
from prometheus_client import CollectorRegistry
from query_api import Settings, create_app
from read_models.events import EventStoreReader
from read_models.lake import LakeReports
from read_models.search import ProductSearch
from read_models.stats import InventoryReader, StatsReader
from search_indexer import IndexTable, SearchIndexSink, decode, prepare_table
from sink_kit.aws import ensure_table
from sink_kit.postgres import make_engine
from sink_kit.postgres import upgrade_schema as upgrade_stats
from sqlalchemy.engine import Engine
from stats_aggregator import Decoder, InventoryProjection, StatsSink, inventory_table_definition
from stats_aggregator.store import MIGRATION_LOCK, MIGRATIONS

READ_KEY = "read-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"
THRESHOLD = 10
PREFIX = "dbserver1.public."
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
WINDOW_MS = 300_000
WORDS = ("espresso", "cup", "mug", "kettle", "grinder", "filter")


def _value(record: Any) -> bytes:
    return record.value.encode() if isinstance(record.value, str) else record.value


def _schema_url(server: PostgresServer, schema: str) -> str:
    conn = server.connect("sink")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    conn.close()
    return f"{server.url('sink', driver='postgresql+psycopg2')}?options=-csearch_path%3D{schema}"


def products(n: int = 40) -> list[dict[str, Any]]:
    """Names from a small vocabulary (so a word matches many products, over several pages)."""
    return [
        {
            "id": i,
            "name": f"{WORDS[i % len(WORDS)].title()} {WORDS[(i * 7) % len(WORDS)]} {i}",
            "description": f"a {WORDS[(i + 1) % len(WORDS)]} for the {WORDS[i % 4]}",
            "price": Decimal(5 + (i * 37) % 200) + Decimal("0.50"),
            "stock": (i * 13) % 25,
        }
        for i in range(1, n + 1)
    ]


def _order(oid: int, offset: int, version: int, status: str, minute: int) -> OrderChange:
    return OrderChange(
        order_id=oid,
        customer_id=oid % 3,
        status=status,
        total=Decimal("10.00") * oid,
        created_at=T0,
        deleted=False,
        op="c" if version == 1 else "u",
        source_ts_ms=T0_MS + minute * 60_000,
        offset=offset,
        version=f"q{oid:030d}{version:031d}",
        event_id=f"{oid}-{version}",
    )


@dataclass
class Stack:
    """The seeded read models, their readers (for the direct calls) and the settings."""

    settings: Settings
    stats: StatsReader
    events: EventStoreReader
    search: ProductSearch
    inventory: InventoryReader
    lake: LakeReports
    stats_harness: SinkHarness[Any]
    products: list[dict[str, Any]]
    engines: list[Engine] = field(default_factory=list)
    lsn: int = 10_000

    def change(self, table: str, row: dict[str, Any], op: str = "u") -> None:
        """One more change through the statistics' sink (a new LSN each)."""
        self.lsn += 10
        record = make_change(op, table=table, after=row, lsn=self.lsn)
        self.stats_harness.produce(PREFIX + table, [_value(record)])
        self.stats_harness.run_until_idle()


def _seed_stats(
    url: str, aws: AwsEmulator, inventory_table: str, rows: list[dict[str, Any]]
) -> tuple[SinkHarness[Any], Engine]:
    engine = make_engine(url)
    upgrade_stats(engine, MIGRATIONS, MIGRATION_LOCK)
    client = aws.client("dynamodb")
    ensure_table(client, inventory_table_definition() | {"TableName": inventory_table})
    projection = InventoryProjection(client, inventory_table, THRESHOLD)
    sink = StatsSink(engine, group="g", threshold=THRESHOLD, projection=projection)
    harness: SinkHarness[Any] = SinkHarness(
        sink, Decoder(), strategy=CommitStrategy.SINK_MANAGED, batch_size=500
    )
    lsn = 100
    for row in rows[:20]:
        lsn += 1
        harness.produce(PREFIX + "products", [_value(make_change("c", after=row, lsn=lsn))])
    for cid in (1, 2, 3):
        lsn += 1
        customer = {"id": cid, "email": f"c{cid}@example.com", "country": "DE"}
        harness.produce(
            PREFIX + "customers",
            [_value(make_change("c", table="customers", after=customer, lsn=lsn))],
        )
    for oid in range(1, 7):
        lsn += 1
        order = {"id": oid, "customer_id": oid % 3 + 1, "status": "paid",
                 "total": Decimal("12.50") * oid, "created_at": T0}  # fmt: skip
        harness.produce(
            PREFIX + "orders", [_value(make_change("c", table="orders", after=order, lsn=lsn))]
        )
        line = {"id": oid, "order_id": oid, "product_id": oid, "quantity": 2,
                "unit_price": Decimal("6.25")}  # fmt: skip
        harness.produce(
            PREFIX + "order_items",
            [_value(make_change("c", table="order_items", after=line, lsn=lsn))],
        )
    harness.produce(
        "user-events",
        [make_user_activity("purchase", event_id="e1", user_id="u1", amount="12.50"),
         make_user_activity("view", event_id="e2", user_id="u1")],
    )  # fmt: skip
    harness.run_until_idle()
    assert harness.dlq.records == []
    return harness, engine


def _seed_events(url: str) -> Engine:
    engine = make_engine(url)
    upgrade_schema(engine)
    sink = EventStoreSink(engine, "g", metrics=StoreMetrics(CollectorRegistry()))
    harness: SinkHarness[Any] = SinkHarness(
        sink, EventDecoder(), strategy=CommitStrategy.SINK_MANAGED, service="event-store-writer"
    )
    order = {"id": 7, "customer_id": 1, "status": "new", "total": Decimal("30.00"),
             "created_at": T0}  # fmt: skip
    changes = [
        make_change("c", table="orders", after=order, lsn=1000, source_ts_ms=T0_MS),
        make_change(
            "u",
            table="orders",
            before=order,
            after=order | {"status": "paid"},
            lsn=1010,
            source_ts_ms=T0_MS + 60_000,
        ),
        make_change(
            "u",
            table="orders",
            before=order | {"status": "paid"},
            after=order | {"status": "shipped"},
            lsn=1020,
            source_ts_ms=T0_MS + 120_000,
        ),
    ]
    for c in changes:
        harness.produce(PREFIX + "orders", [_value(c)], key=orjson.dumps({"id": 7}))
    harness.produce("user-events", [b"\xff\xfe", b"not json"])
    harness.run_until_idle()
    harness.shutdown()
    return engine


def _seed_search(aws: AwsEmulator, table_name: str, rows: list[dict[str, Any]]) -> None:
    client = aws.client("dynamodb")
    prepare_table(client, table_name)
    harness: SinkHarness[Any] = SinkHarness(SearchIndexSink(IndexTable(client, table_name)), decode)
    for r in rows:
        value = make_change("c", after=r, lsn=1000 + r["id"], with_schema=True).value or b""
        harness.produce(PREFIX + "products", [value], key=orjson.dumps({"id": r["id"]}))
    harness.run_until_idle()
    harness.shutdown()
    assert harness.dlq.records == []


def _seed_lake(config: CatalogConfig) -> None:
    catalog = open_catalog(config)
    ensure_changes_tables(catalog, config.namespace)
    writer = ExactlyOnceCommitter(open_catalog(config), config.namespace)
    changes = [_order(oid, oid - 1, 1, "paid", oid * 3) for oid in range(1, 9)]
    changes.append(_order(2, 8, 2, "cancelled", 30))
    writer.append(
        ORDERS_CHANGES, order_rows(0, changes), {TopicPartition(PREFIX + "orders", 0): 9}, 1
    )
    result = materialize_reports(catalog, config.namespace, window_ms=WINDOW_MS, top_n=10)
    assert result.written


@pytest.fixture(scope="module")
def stack(sink_postgres: PostgresServer, aws_emulator: AwsEmulator) -> Iterator[Stack]:
    for name, value in aws_emulator.env.items():  # the emulator's credentials for boto3, pyiceberg
        os.environ.setdefault(name, value)
    uid = uuid.uuid4().hex[:8]
    rows = products()
    stats_url = _schema_url(sink_postgres, f"qs_{uid}")
    events_url = _schema_url(sink_postgres, f"qe_{uid}")
    lake_url = _schema_url(sink_postgres, f"ql_{uid}")
    bucket = f"query-api-{uid}"
    aws_emulator.client("s3").create_bucket(Bucket=bucket)
    inventory_table, search_table = f"inv-{uid}", f"psi-{uid}"

    harness, stats_engine = _seed_stats(stats_url, aws_emulator, inventory_table, rows)
    events_engine = _seed_events(events_url)
    _seed_search(aws_emulator, search_table, rows)
    env = aws_emulator.env
    config = CatalogConfig.from_env(lake_url, f"s3://{bucket}/warehouse", env=env)
    _seed_lake(config)

    settings = Settings(
        api_port=free_port(),
        api_host="127.0.0.1",
        api_keys_file="/nonexistent/query-api-keys",
        api_keys=f"dashboard:read:{READ_KEY},ops:admin:{ADMIN_KEY}",
        database_url=stats_url,
        event_store_url=events_url,
        dynamodb_table=search_table,
        inventory_table=inventory_table,
        aws_endpoint_url=aws_emulator.endpoint_url,
        aws_region=env.get("AWS_REGION", "us-east-1"),
        lake_catalog_uri=lake_url,
        lake_warehouse=f"s3://{bucket}/warehouse",
        backend_timeout_s=10.0,
    )
    aws = {"region": settings.aws_region, "endpoint_url": settings.aws_endpoint_url}
    lake_config = settings.catalog_config()
    assert lake_config is not None
    found = Stack(
        settings=settings,
        stats=StatsReader(stats_url),
        events=EventStoreReader(events_url),
        search=ProductSearch.connect(search_table, **aws),
        inventory=InventoryReader.connect(inventory_table, **aws),
        lake=LakeReports(lake_config),
        stats_harness=harness,
        products=rows,
        engines=[stats_engine, events_engine],
    )
    yield found
    harness.shutdown()
    found.stats.close()
    found.events.close()
    for engine in found.engines:
        engine.dispose()


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """``create_app(settings)`` served by uvicorn in a thread on ``API_PORT``; its base URL."""
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=settings.api_port,
        log_level="warning",
        lifespan="on",
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "the API server did not start"
        assert thread.is_alive(), "the API server stopped at start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.api_port}"
    finally:
        uv.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def server(stack: Stack) -> Iterator[str]:
    """The API over the seeded stack; its base URL."""
    with serve(stack.settings) as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers={"X-API-Key": READ_KEY}, timeout=20) as c:
        yield c
