"""Refusals against the real S3 emulator: the sink in the real consumer loop (``SinkHarness``)
with its objects on moto, read back as the verifier reads them (``verify.Lake``).

A record whose value the lake cannot hold is dead-lettered alone (``store_rejected``) and the
records around it are written; the largest values the shop's columns allow are written, and
their totals are exact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from analytics_flusher import Decoder, LakeSink, S3Store, WindowConfig
from cdc_events.testing import make_change
from consumer_runtime import CommitStrategy, TopicPartition
from consumer_runtime.testing import SinkHarness
from devstack import AwsEmulator, truth

pytestmark = pytest.mark.timeout(120)

ORDERS = "dbserver1.public.orders"
ITEMS = "dbserver1.public.order_items"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CREATED = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
MAX_ID = 2**31 - 1  # serial / integer
MAX_TOTAL = Decimal("9999999999.99")  # numeric(12,2)
MAX_PRICE = Decimal("99999999.99")  # numeric(10,2)


def _order(oid: int, total: Decimal, offset: int) -> bytes:
    row = {"id": oid, "customer_id": oid, "status": "paid", "total": total, "created_at": CREATED}
    rec = make_change("c", table="orders", after=row, with_schema=True, source_ts_ms=T0 + offset)
    assert rec.value is not None
    return rec.value


def _item(iid: int, oid: int, qty: int, price: Decimal) -> bytes:
    row = {"id": iid, "order_id": oid, "product_id": oid, "quantity": qty, "unit_price": price}
    rec = make_change("c", table="order_items", after=row, with_schema=True, source_ts_ms=T0)
    assert rec.value is not None
    return rec.value


def test_a_record_the_lake_cannot_hold_is_dead_lettered_and_the_rest_reach_s3(
    aws_emulator: AwsEmulator, s3_bucket: str, lake: Any
) -> None:
    orders = [
        _order(1, Decimal("10.00"), 0),
        _order(MAX_ID, MAX_TOTAL, 1),
        _order(3, Decimal("1" + "0" * 17), 2),  # 1e17: no numeric(12,2), no decimal(18,2)
        _order(4, Decimal("30.00"), 3),
    ]
    items = [
        _item(1, 1, 2, Decimal("5.00")),
        _item(MAX_ID, MAX_ID, MAX_ID, MAX_PRICE),  # a line of 2.1e17
        _item(3, 4, 1, Decimal("30.00")),
    ]
    store = S3Store(aws_emulator.client("s3"), s3_bucket)
    sink = LakeSink(store, WindowConfig(window_ms=300_000, grace_ms=60_000))
    harness = SinkHarness(sink, Decoder(), strategy=CommitStrategy.COMMIT_AFTER_FLUSH)
    harness.produce(ORDERS, orders)
    harness.produce(ITEMS, items)
    harness.run_until_idle()
    harness.shutdown()
    assert [(d.topic, d.offset, d.code) for d in harness.dead_letters] == [
        (ORDERS, 2, "store_rejected")
    ]
    assert "orders.total=100000000000000000" in harness.dead_letters[0].message
    assert harness.committed == {TopicPartition(ORDERS, 0): 4, TopicPartition(ITEMS, 0): 3}
    day = CREATED.date()
    assert lake.totals() == {
        "daily_sales": {day: truth.DailySales(day, 3, MAX_TOTAL + Decimal("40.00"))},
        "product_sales_by_day": {
            (day, 1): (2, Decimal("10.00")),
            (day, 4): (1, Decimal("30.00")),
            (day, MAX_ID): (MAX_ID, MAX_PRICE * MAX_ID),
        },
        "customer_spend_by_day": {
            (day, 1): (1, Decimal("10.00")),
            (day, 4): (1, Decimal("30.00")),
            (day, MAX_ID): (1, MAX_TOTAL),
        },
        "order_status_counts": {"paid": 3},
    }
