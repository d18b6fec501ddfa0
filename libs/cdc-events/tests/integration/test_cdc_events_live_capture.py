"""The golden records still match the connector: run the capture workload against the live
Debezium relay and check that fresh records parse to the expected values and have the same
shape (schemas, source block, envelope fields) as the committed golden records."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import orjson
import pytest
from cdc_events import (
    UNCHANGED,
    ChangeEvent,
    Heartbeat,
    Tombstone,
    TransactionBoundary,
    parse_record,
    source_version,
)
from cdc_events.testing import Workload, golden
from devstack import DebeziumRelay, PostgresServer, Record, read_topic


@pytest.fixture
def workload(source_postgres: PostgresServer, unique_id: str) -> Iterator[Workload]:
    w = Workload(
        products=f"p_{unique_id}",
        orders=f"o_{unique_id}",
        enum_type=f"mood_{unique_id}",
        scratch=f"s_{unique_id}",
    )
    conn = source_postgres.connect("shop")
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in w.setup():
            cur.execute(statement)
    yield w
    with conn.cursor() as cur:
        for table in (w.products, w.orders, w.scratch):
            cur.execute(f"DROP TABLE IF EXISTS public.{table}")
        cur.execute(f"DROP TYPE IF EXISTS {w.enum_type}")
    conn.close()


def _run(source: PostgresServer, w: Workload) -> None:
    conn = source.connect("shop")
    try:
        with conn.cursor() as cur:
            for statement in w.before_snapshot():  # streamed here: the relay already runs
                cur.execute(statement)
        conn.commit()
        # The row changes; truncate is skipped by the session relay's default settings and the
        # logical-decoding message topic is shared, so they are covered by the golden records.
        for tx in w.transactions()[:5]:
            with conn.cursor() as cur:
                for statement in tx:
                    cur.execute(statement)
            conn.commit()
    finally:
        conn.close()


def _parse(rec: Record) -> Any:
    return parse_record(rec.topic, rec.partition, rec.offset, rec.key, rec.value, list(rec.headers))


def _shape(value: bytes | None, table: str) -> Any:
    """Value schema and payload layout with the table name neutralised."""
    assert value is not None
    text = value.decode().replace(f".{table}.", ".products.").replace(f'"{table}"', '"products"')
    doc = orjson.loads(text)
    payload = doc["payload"]
    return {
        "schema": doc["schema"],
        "payload_keys": sorted(payload),
        "source_keys": sorted(payload["source"]),
    }


def test_fresh_records_match_the_golden_ones(
    debezium_relay: DebeziumRelay,
    source_postgres: PostgresServer,
    kafka_bootstrap: str,
    workload: Workload,
) -> None:
    _run(source_postgres, workload)
    products_topic = f"dbserver1.public.{workload.products}"
    orders_topic = f"dbserver1.public.{workload.orders}"
    products = read_topic(kafka_bootstrap, products_topic, expected=5, timeout=60)
    orders = read_topic(kafka_bootstrap, orders_topic, expected=5, timeout=60)
    assert len(products) == 5 and len(orders) == 5
    products.sort(key=lambda r: r.offset)  # one key per partition: order within a key holds
    orders.sort(key=lambda r: r.offset)

    events = [_parse(r) for r in products]
    by_kind = {(e.op if isinstance(e, ChangeEvent) else "tombstone", _key_id(e)): e for e in events}
    cup = by_kind[("c", 1)]
    assert isinstance(cup, ChangeEvent)
    assert cup.after == {
        "id": 1,
        "name": "Espresso Cup",
        "description": "Small ceramic cup",
        "price": Decimal("12.50"),
        "weight": Decimal("0.25"),
        "stock": 10,
        "tags": ["kitchen", "ceramic"],
        "sizes": [1, 2, 3],
        "attrs": {"color": "blue", "dims": [8, 6]},
        "ref": uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        "release_date": date(1965, 3, 1),
        "listed_at": datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=UTC),
        "listed_ms": datetime(1969, 7, 20, 20, 17, 40, 123000, tzinfo=UTC),
        "updated_at": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "opens_at": time(8, 30, 15, 500000),
        "opens_ms": time(8, 30, 15, 500000),
        "mood": "happy",
    }
    teapot = by_kind[("c", 2)]
    assert isinstance(teapot, ChangeEvent) and teapot.after is not None
    assert teapot.after["price"] == Decimal("1234567.89")
    assert teapot.after["weight"] == Decimal("-3.14159")
    assert teapot.after["updated_at"] == datetime(2099, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)
    updated = by_kind[("u", 2)]
    assert isinstance(updated, ChangeEvent) and updated.after is not None
    assert updated.unchanged_columns == ("description", "tags", "sizes")
    assert updated.after["description"] is UNCHANGED
    assert updated.after["price"] == Decimal("13.99")
    deleted = by_kind[("d", 1)]
    assert isinstance(deleted, ChangeEvent) and deleted.before_is_key_only
    assert isinstance(by_kind[("tombstone", 1)], Tombstone)

    # Same shape as the committed golden records of the same statements.
    for golden_name, fresh in (
        ("pg-schema-products-c", products[1]),
        ("pg-schema-products-u", products[2]),
        ("pg-schema-products-d", products[3]),
    ):
        assert _shape(fresh.value, workload.products) == _shape(
            golden(golden_name).value, "products"
        ), golden_name

    order_events = [_parse(r) for r in orders]
    order_delete = next(e for e in order_events if isinstance(e, ChangeEvent) and e.op == "d")
    assert not order_delete.before_is_key_only
    assert order_delete.before == {
        "id": 1,
        "status": "pending",
        "total": Decimal("99.90"),
        "created_at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    order_update = next(e for e in order_events if isinstance(e, ChangeEvent) and e.op == "u")
    assert _shape(orders[order_events.index(order_update)].value, workload.orders) == _shape(
        golden("pg-schema-orders-u").value, "orders"
    )

    # The versions of each row's changes grow in the order the connector emitted them (one key
    # per partition, so offset order is that order), from the real source.sequence.
    for changes in (events, order_events):
        by_key: dict[Any, list[str]] = {}
        for event in changes:
            if isinstance(event, ChangeEvent):
                by_key.setdefault(_key_id(event), []).append(source_version(event))
        for versions in by_key.values():
            assert versions == sorted(versions) and len(set(versions)) == len(versions), versions
    assert updated.source.commit_lsn is not None  # a later transaction than the first streamed

    # Transaction metadata: BEGIN and END of the teapot's transaction correlate on the txId.
    boundaries = [
        e
        for e in map(
            _parse, read_topic(kafka_bootstrap, "dbserver1.transaction", timeout=30, idle=3)
        )
        if isinstance(e, TransactionBoundary) and e.tx_id == teapot.tx_id
    ]
    assert sorted(b.status for b in boundaries) == ["BEGIN", "END"]
    end = next(b for b in boundaries if b.status == "END")
    assert end.event_count == 2
    assert dict(end.data_collections) == {
        f"public.{workload.orders}": 1,
        f"public.{workload.products}": 1,
    }

    beats = read_topic(kafka_bootstrap, "__debezium-heartbeat.dbserver1", expected=1, timeout=30)
    beat = _parse(beats[0])
    assert isinstance(beat, Heartbeat) and beat.server_name == "dbserver1"


def _key_id(event: Any) -> Any:
    return None if event.key is None else event.key.get("id")
