"""Replayed dead letters against the real S3 emulator: the sink in the real consumer loop
(``SinkHarness``), the objects read back as the verifier reads them (``verify.Lake``).

A history with a snapshot, a transaction open across the snapshot point (its change LSN below
the snapshot's) and a later cancellation is written; then, after a restart, the snapshot reads
are re-produced as ``cdc dlq replay`` does (the same bytes at higher offsets). The lake's totals
must stay the source's: each row's current state is its newest change by source position.
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
SNAPSHOT_LSN = 5_000  # the snapshot's consistent point


def _order(oid: int, status: str, total: str, op: str, lsn: int, **source: Any) -> bytes:
    row = {
        "id": oid,
        "customer_id": oid,
        "status": status,
        "total": Decimal(total),
        "created_at": CREATED,
    }
    value = make_change(op, table="orders", after=row, with_schema=True, lsn=lsn, **source).value
    assert value is not None
    return value


def _item(iid: int, oid: int, product: int, qty: int, price: str) -> bytes:
    row = {
        "id": iid,
        "order_id": oid,
        "product_id": product,
        "quantity": qty,
        "unit_price": Decimal(price),
    }
    value = make_change(
        "r",
        table="order_items",
        after=row,
        with_schema=True,
        lsn=SNAPSHOT_LSN,
        snapshot="true",
        source_ts_ms=T0,
    ).value
    assert value is not None
    return value


def _run(
    sink: LakeSink, committed: dict[TopicPartition, int], records: dict[str, list[bytes]]
) -> SinkHarness[Any]:
    harness = SinkHarness(sink, Decoder(), strategy=CommitStrategy.COMMIT_AFTER_FLUSH, batch_size=2)
    harness.consumer.committed.update(committed)
    for topic, values in records.items():
        harness.produce(topic, values)
    harness.run_until_idle()
    harness.shutdown()  # flush: every part written, then committed
    assert harness.dlq.records == []
    return harness


def test_replayed_snapshot_reads_do_not_become_the_current_state_in_s3(
    aws_emulator: AwsEmulator, s3_bucket: str, lake: Any
) -> None:
    reads = [  # the snapshot at LSN 5000: every read carries it
        _order(1, "pending", "10.00", "r", SNAPSHOT_LSN, snapshot="first", source_ts_ms=T0),
        _order(2, "pending", "20.00", "r", SNAPSHOT_LSN, snapshot="last", source_ts_ms=T0),
    ]
    streamed = [
        # A transaction open across the snapshot point: its change LSN is below the snapshot's.
        _order(2, "paid", "20.00", "u", 4_000, sequence=(None, 4_000), source_ts_ms=T0 + 1_000),
        # A later transaction (the previous commit was at 5100).
        _order(
            1, "cancelled", "10.00", "u", 5_200, sequence=(5_100, 5_200), source_ts_ms=T0 + 2_000
        ),
    ]
    items = [_item(1, 1, 100, 1, "10.00"), _item(2, 2, 101, 2, "10.00")]

    def sink() -> LakeSink:
        store = S3Store(aws_emulator.client("s3"), s3_bucket)
        return LakeSink(store, WindowConfig(window_ms=300_000, grace_ms=60_000))

    first = _run(sink(), {}, {ORDERS: reads + streamed, ITEMS: items})
    assert first.committed == {TopicPartition(ORDERS, 0): 4, TopicPartition(ITEMS, 0): 2}
    day = CREATED.date()
    expected = {
        "daily_sales": {day: truth.DailySales(day, 1, Decimal("20.00"))},
        "product_sales_by_day": {(day, 101): (2, Decimal("20.00"))},
        "customer_spend_by_day": {(day, 2): (1, Decimal("20.00"))},
        "order_status_counts": {"cancelled": 1, "paid": 1},
    }
    assert lake.totals() == expected
    # `cdc dlq replay`: the reads' bytes again, at offsets 4 and 5, read by a restarted flusher
    # (a new part of the same window, under new keys).
    replayed = _run(sink(), dict(first.committed), {ORDERS: reads + streamed + reads})
    assert replayed.committed[TopicPartition(ORDERS, 0)] == 6
    keys = [k for k in lake.versions() if "/orders/" in k]
    assert len(keys) == 2 and any("-000000000004-000000000005" in k for k in keys)
    assert lake.totals() == expected
