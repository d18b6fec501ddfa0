"""Schema evolution of the Iceberg changes tables, with the sink in the real consumer loop
(``SinkHarness``), its catalog in PostgreSQL and its warehouse and reports on the AWS emulator.

Columns the source table gained appear in the changes table from the first change holding them,
in the same sink (no restart), with the types Debezium's schema gives them; a change whose value
its column cannot take (the source column's type changed) is dead-lettered with the reason, and
the changes around it are written.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from analytics_flusher import Decoder, LakeSink, S3Store, WindowConfig
from analytics_flusher.store._iceberg import ORDERS_CHANGES, CatalogConfig, open_changes_writer
from cdc_events.testing import make_change
from consumer_runtime import CommitStrategy, TopicPartition
from consumer_runtime.testing import SinkHarness
from devstack import AwsEmulator

pytestmark = pytest.mark.timeout(120)

ORDERS = "dbserver1.public.orders"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CREATED = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)


def _order(oid: int, offset: int, **extra: Any) -> bytes:
    row = {"id": oid, "customer_id": 1, "status": "paid", "total": Decimal("10.00")}
    row |= {"created_at": CREATED, **extra}
    rec = make_change("c", table="orders", after=row, with_schema=True, source_ts_ms=T0 + offset)
    assert rec.value is not None
    return rec.value


def _sink(aws_emulator: AwsEmulator, bucket: str, config: CatalogConfig) -> LakeSink:
    writer = open_changes_writer(config, {"orders": ORDERS_CHANGES}, interval_s=60.0)
    store = S3Store(aws_emulator.client("s3"), bucket)
    return LakeSink(store, WindowConfig(window_ms=300_000, grace_ms=60_000), changes=writer)


def _rows(iceberg: Any) -> list[dict[str, Any]]:
    rows = iceberg.table(ORDERS_CHANGES).scan().to_arrow().sort_by("kafka_offset").to_pylist()
    return rows


def test_columns_added_to_the_source_appear_and_a_type_change_is_dead_lettered(
    aws_emulator: AwsEmulator, s3_bucket: str, iceberg: Any
) -> None:
    sink = _sink(aws_emulator, s3_bucket, iceberg.config)
    harness = SinkHarness(sink, Decoder(), strategy=CommitStrategy.COMMIT_AFTER_FLUSH)
    harness.produce(ORDERS, [_order(1, 0)])
    harness.run_until_idle()
    sink.changes.commit()  # the table as it was: the shop's columns only
    assert "gift_note" not in iceberg.table(ORDERS_CHANGES).schema().column_names

    harness.produce(
        ORDERS,
        [
            _order(2, 1, gift_note="for Ana", weight=Decimal("1.250"), ship_by=date(2026, 1, 9)),
            _order(3, 2, gift_note=None, weight=Decimal("0.5"), op="source column named op"),
            _order(4, 3, gift_note=7, weight=Decimal("2.000")),  # gift_note became an integer
            _order(5, 4, gift_note="ok", weight=Decimal("0.0001")),  # finer than the column
            _order(6, 5, gift_note="last", weight=3),  # an integer fits a decimal column
        ],
    )
    harness.run_until_idle()
    harness.shutdown()

    letters = [(d.offset, d.code) for d in harness.dead_letters]
    assert letters == [(3, "store_rejected"), (4, "store_rejected")]
    assert "orders_changes.gift_note is string; this change holds 7 (int)" in (
        harness.dead_letters[0].message
    )
    assert "orders_changes.weight is decimal(38, 3)" in harness.dead_letters[1].message
    assert harness.committed == {TopicPartition(ORDERS, 0): 6}

    schema = iceberg.table(ORDERS_CHANGES).schema()
    assert str(schema.find_field("gift_note").field_type) == "string"
    assert str(schema.find_field("weight").field_type) == "decimal(38, 3)"
    assert str(schema.find_field("ship_by").field_type) == "date"
    assert str(schema.find_field("source_op").field_type) == "string"
    assert not schema.find_field("gift_note").required
    got = [
        (r["order_id"], r["op"], r["gift_note"], r["weight"], r["ship_by"], r["source_op"])
        for r in _rows(iceberg)
    ]
    assert got == [
        (1, "c", None, None, None, None),
        (2, "c", "for Ana", Decimal("1.250"), date(2026, 1, 9), None),
        (3, "c", None, Decimal("0.500"), None, "source column named op"),
        (6, "c", "last", Decimal("3.000"), None, None),
    ]


def test_a_new_column_whose_values_are_all_null_is_added_with_its_first_value(
    aws_emulator: AwsEmulator, s3_bucket: str, iceberg: Any
) -> None:
    sink = _sink(aws_emulator, s3_bucket, iceberg.config)
    harness = SinkHarness(sink, Decoder(), strategy=CommitStrategy.COMMIT_AFTER_FLUSH)
    harness.produce(ORDERS, [_order(1, 0, coupon=None)])
    harness.run_until_idle()
    sink.changes.commit()
    assert "coupon" not in iceberg.table(ORDERS_CHANGES).schema().column_names
    harness.produce(ORDERS, [_order(2, 1, coupon=True)])
    harness.run_until_idle()
    harness.shutdown()
    assert harness.dead_letters == []
    assert str(iceberg.table(ORDERS_CHANGES).schema().find_field("coupon").field_type) == (
        "boolean"
    )
    assert [(r["order_id"], r["coupon"]) for r in _rows(iceberg)] == [(1, None), (2, True)]
