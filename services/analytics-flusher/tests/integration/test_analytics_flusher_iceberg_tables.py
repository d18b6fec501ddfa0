"""The Iceberg catalog and the changes tables on a real catalog database (PostgreSQL) and
warehouse (the AWS emulator's S3): several processes starting at once on an empty catalog all
succeed and create each table once; a decoded change reads back as it was written.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from analytics_flusher import ItemChange, OrderChange
from analytics_flusher.store._iceberg import (
    CHANGES_TABLES,
    ITEMS_CHANGES,
    ORDERS_CHANGES,
    CatalogConfig,
    ensure_changes_tables,
    item_rows,
    open_catalog,
    order_rows,
)
from consumer_runtime import TopicPartition
from pyiceberg.transforms import DayTransform

STARTS = 4


def test_concurrent_starts_on_an_empty_catalog_create_everything_once(
    iceberg_config: CatalogConfig,
) -> None:
    barrier = threading.Barrier(STARTS)

    def start() -> dict[str, str]:
        barrier.wait(timeout=30)  # every start runs into the catalog tables' creation at once
        catalog = open_catalog(iceberg_config)
        barrier.wait(timeout=30)  # and into the changes tables' creation
        tables = ensure_changes_tables(catalog, iceberg_config.namespace)
        return {name: str(table.metadata.table_uuid) for name, table in tables.items()}

    with ThreadPoolExecutor(max_workers=STARTS) as pool:
        started = list(pool.map(lambda _: start(), range(STARTS)))

    assert all(uuids == started[0] for uuids in started), started
    catalog = open_catalog(iceberg_config)
    assert sorted(catalog.list_tables(iceberg_config.namespace)) == [
        (iceberg_config.namespace, ITEMS_CHANGES),
        (iceberg_config.namespace, ORDERS_CHANGES),
    ]
    for name, schema in CHANGES_TABLES.items():
        table = catalog.load_table((iceberg_config.namespace, name))
        assert table.schema() == schema
        (field,) = table.spec().fields
        assert isinstance(field.transform, DayTransform)
        assert table.schema().find_column_name(field.source_id) == "event_time"
    # Later starts find everything in place.
    again = ensure_changes_tables(open_catalog(iceberg_config), iceberg_config.namespace)
    assert {name: str(t.metadata.table_uuid) for name, t in again.items()} == started[0]


def test_decoded_changes_read_back_as_written(iceberg: Any) -> None:
    created = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    orders = [
        OrderChange(
            7,
            3,
            "pending",
            Decimal("9999999999.99"),
            created,
            False,
            "r",
            1_772_366_400_000,
            40,
            "q" + "1" * 61,
            "e40",
            sweep="q" + "0" * 61,
        ),
        OrderChange(
            7,
            3,
            "paid",
            Decimal("12.30"),
            created,
            False,
            "u",
            1_772_366_460_000,
            41,
            "q" + "2" * 61,
            "e41",
        ),
        OrderChange(
            7, None, None, None, None, True, "d", 1_772_452_800_000, 42, "q" + "3" * 61, "e42"
        ),
    ]
    items = [
        ItemChange(
            70,
            7,
            5,
            2_147_483_647,
            Decimal("99999999.99"),
            False,
            "c",
            1_772_366_400_000,
            9,
            "q" + "4" * 61,
            "e9",
        )
    ]
    writer = iceberg.writer()
    orders_topic, items_topic = "dbserver1.public.orders", "dbserver1.public.order_items"
    writer.append(ORDERS_CHANGES, order_rows(2, orders), {TopicPartition(orders_topic, 2): 43}, 1)
    writer.append(ITEMS_CHANGES, item_rows(0, items), {TopicPartition(items_topic, 0): 10}, 1)

    back = iceberg.table(ORDERS_CHANGES).scan().to_arrow().sort_by("kafka_offset").to_pylist()
    assert [(r["op"], r["status"], r["total"], r["kafka_partition"]) for r in back] == [
        ("r", "pending", Decimal("9999999999.99"), 2),
        ("u", "paid", Decimal("12.30"), 2),
        ("d", None, None, 2),
    ]
    assert back[0]["created_at"] == created
    assert back[0]["sweep_version"] == "q" + "0" * 61 and back[1]["sweep_version"] is None
    assert back[2]["event_time"] == datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert [r["source_version"] for r in back] == [c.version for c in orders]
    # One data file per day of event time (the partitioning).
    days = {task.file.partition[0] for task in iceberg.table(ORDERS_CHANGES).scan().plan_files()}
    assert len(days) == 2

    (line,) = iceberg.table(ITEMS_CHANGES).scan().to_arrow().to_pylist()
    assert (line["quantity"], line["unit_price"], line["kafka_offset"]) == (
        2_147_483_647,
        Decimal("99999999.99"),
        9,
    )
