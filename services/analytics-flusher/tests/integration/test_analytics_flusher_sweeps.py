"""A re-snapshot's sweep against the real S3 emulator: the sink in the real consumer loop
(``SinkHarness``), the objects read back and compared with a source database as ``cdc dev
verify`` does (``verify.compare``: the DuckDB queries of ``queries.py``, and every key written
twice holding the same bytes in the versioned bucket).

The first generation (a snapshot at LSN 1000, then streamed changes) is written; Debezium loses
its offsets, and meanwhile order 2 and its line are deleted and order 3 is cancelled. The second
snapshot (at 5000) reads what is left, its last read of each table carrying the sweep; then more
changes are streamed. Orders are spread over two partitions, and the second snapshot's read of
order 3 (partition 1) is consumed after partition 0's sweep: until then order 3 counts as
swept, and it comes back with its read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from analytics_flusher import Decoder, LakeSink, S3Store, WindowConfig, verify
from cdc_events.testing import make_change
from consumer_runtime import CommitStrategy, TopicPartition
from consumer_runtime.testing import SinkHarness
from devstack import AwsEmulator, PostgresServer, install_schema

pytestmark = pytest.mark.timeout(180)

ORDERS = "dbserver1.public.orders"
ITEMS = "dbserver1.public.order_items"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000
CREATED = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
FIRST, SECOND = 1_000, 5_000  # the two snapshots' consistent points (LSNs)

Records = dict[tuple[str, int], list[bytes]]


def _ts(lsn: int) -> int:
    return T0 + (lsn // 1_000) * MIN


def _order(
    oid: int,
    status: str,
    total: str,
    lsn: int,
    *,
    commit: int | None = None,
    snapshot: str = "false",
    op: str = "u",
) -> bytes:
    row = {
        "id": oid,
        "customer_id": oid,
        "status": status,
        "total": Decimal(total),
        "created_at": CREATED,
    }
    if snapshot != "false":
        op = "r"
    value = make_change(
        op,
        table="orders",
        after=row,
        with_schema=True,
        lsn=lsn,
        sequence=(commit, lsn),
        snapshot=snapshot,
        source_ts_ms=_ts(lsn),
    ).value
    assert value is not None
    return value


def _line(
    iid: int, oid: int, lsn: int, *, commit: int | None = None, snapshot: str = "false"
) -> bytes:
    row = {
        "id": iid,
        "order_id": oid,
        "product_id": 100 + oid,
        "quantity": oid,
        "unit_price": Decimal("10.00"),
    }
    value = make_change(
        "r" if snapshot != "false" else "c",
        table="order_items",
        after=row,
        with_schema=True,
        lsn=lsn,
        sequence=(commit, lsn),
        snapshot=snapshot,
        source_ts_ms=_ts(lsn),
    ).value
    assert value is not None
    return value


LAST = "last_in_data_collection"
FIRST_GENERATION: Records = {
    (ORDERS, 0): [
        _order(1, "pending", "10.00", FIRST, snapshot="true"),
        _order(2, "pending", "20.00", FIRST, snapshot=LAST),
        _order(4, "pending", "40.00", 1_200, commit=1_100, op="c"),
    ],
    (ORDERS, 1): [
        _order(3, "pending", "30.00", FIRST, snapshot="true"),
        _order(3, "paid", "30.00", 1_400, commit=1_300),
    ],
    (ITEMS, 0): [
        _line(11, 1, FIRST, snapshot="true"),
        _line(12, 2, FIRST, snapshot="true"),
        _line(13, 3, FIRST, snapshot="last"),
        _line(14, 4, 1_200, commit=1_100),
    ],
}
# Order 2 and line 12 deleted, order 3 cancelled while Debezium had no offsets; then:
SECOND_GENERATION: Records = {
    (ORDERS, 0): [
        _order(1, "pending", "10.00", SECOND, snapshot="true"),
        _order(4, "pending", "40.00", SECOND, snapshot=LAST),
        _order(5, "pending", "50.00", 5_100, op="c"),  # the first transaction after it
        _order(1, "paid", "10.00", 5_300, commit=5_200),
    ],
    (ORDERS, 1): [_order(3, "cancelled", "30.00", SECOND, snapshot="true")],
    (ITEMS, 0): [
        _line(11, 1, SECOND, snapshot="true"),
        _line(13, 3, SECOND, snapshot="true"),
        _line(14, 4, SECOND, snapshot="last"),
        _line(15, 5, 5_100),
    ],
}
# `cdc dlq replay` of order 2's first-generation read, of a change of it that lagged behind,
# and of its line's read: the same bytes at new offsets, versions below the sweep.
OLD_CHANGES: Records = {
    (ORDERS, 0): [
        _order(2, "pending", "20.00", FIRST, snapshot="true"),
        _order(2, "paid", "20.00", 1_600, commit=1_500),
    ],
    (ITEMS, 0): [_line(12, 2, FIRST, snapshot="true")],
}


def _concat(*parts: Records) -> Records:
    out: Records = {}
    for records in parts:
        for tp, values in records.items():
            out.setdefault(tp, []).extend(values)
    return out


def _run(
    sink: LakeSink, committed: dict[TopicPartition, int], records: Records
) -> dict[TopicPartition, int]:
    harness = SinkHarness(sink, Decoder(), strategy=CommitStrategy.COMMIT_AFTER_FLUSH, batch_size=2)
    harness.consumer.committed.update(committed)
    for (topic, partition), values in records.items():
        harness.produce(topic, values, partition=partition)
    harness.run_until_idle()
    harness.shutdown()  # flush: every part written, then committed
    assert harness.dlq.records == []
    return dict(harness.committed)


def _source(server: PostgresServer, name: str) -> Any:
    """A shop database holding what the source holds after the second generation."""
    server.create_database(name)
    conn = server.connect(name)
    install_schema(conn)
    with conn.cursor() as cur:
        for cid in (1, 2, 3, 4, 5):
            cur.execute(
                "INSERT INTO customers (id, email, name, country) VALUES (%s, %s, 'c', 'NL')",
                (cid, f"c{cid}@example.com"),
            )
        for oid, status, total in (
            (1, "paid", "10.00"),
            (3, "cancelled", "30.00"),
            (4, "pending", "40.00"),
            (5, "pending", "50.00"),
        ):
            cur.execute(
                "INSERT INTO orders (id, customer_id, status, total, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (oid, oid, status, Decimal(total), CREATED),
            )
        for iid, oid in ((11, 1), (13, 3), (14, 4), (15, 5)):
            cur.execute(
                "INSERT INTO order_items (id, order_id, product_id, quantity, unit_price)"
                " VALUES (%s, %s, %s, %s, 10.00)",
                (iid, oid, 100 + oid, oid),
            )
    conn.commit()
    return conn


def _failed(checks: list[Any]) -> list[Any]:
    return [c for c in checks if not c.ok]


def test_a_new_snapshots_sweep_drops_the_rows_it_did_not_read_in_s3(
    aws_emulator: AwsEmulator,
    s3_bucket: str,
    lake: Any,
    source_postgres: PostgresServer,
    unique_id: str,
) -> None:
    s3 = aws_emulator.client("s3")
    s3.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})

    def sink() -> LakeSink:
        return LakeSink(S3Store(s3, s3_bucket), WindowConfig(window_ms=5 * MIN, grace_ms=MIN))

    first = _run(sink(), {}, FIRST_GENERATION)
    assert lake.totals()["order_status_counts"] == {"paid": 1, "pending": 3}
    # Partition 0 reads the second snapshot through its last read of each table; partition 1
    # has not got to its read of order 3 yet.
    pending_read = {**SECOND_GENERATION, (ORDERS, 1): []}
    partial = _run(sink(), first, _concat(FIRST_GENERATION, pending_read))
    # Order 2 (deleted in the gap) is gone; order 3 counts as swept until its read arrives.
    assert lake.totals()["order_status_counts"] == {"paid": 1, "pending": 2}
    both = _concat(FIRST_GENERATION, SECOND_GENERATION)
    second = _run(sink(), partial, both)
    source = _source(source_postgres, f"shop_sweep_{unique_id}")
    try:
        checks = verify.compare(lake, source)
        assert _failed(checks) == [], checks
        assert lake.totals()["order_status_counts"] == {"cancelled": 1, "paid": 1, "pending": 2}
        # A crash before the commit: the second generation is read and written again, under
        # the same keys with the same bytes (the part holding a sweep included).
        _run(sink(), first, both)
        rewritten = {k for k, etags in lake.versions().items() if len(etags) > 1}
        assert any("/orders/" in k and f"-{ORDERS}-0-" in k for k in rewritten), rewritten
        assert any("/order_items/" in k for k in rewritten), rewritten
        # Older changes of the swept row and line after the sweep: they bring nothing back.
        _run(sink(), second, _concat(both, OLD_CHANGES))
        checks = verify.compare(lake, source)
        assert _failed(checks) == [], checks
        assert {c.name for c in checks} >= {
            "daily_sales",
            "order_status_counts",
            "keys written twice hold the same bytes",
        }
    finally:
        source.close()
