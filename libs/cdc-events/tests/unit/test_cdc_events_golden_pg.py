"""Records captured from the real Debezium PostgreSQL connector decode to the values the
workload wrote (``cdc_events.testing._workload``); the expected values are written out here."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from cdc_events import (
    NORMALISED_KEYS,
    UNCHANGED,
    ChangeEvent,
    ColumnTypes,
    DecimalColumn,
    Heartbeat,
    Parser,
    Tombstone,
    TransactionBoundary,
)
from cdc_events.testing import golden, golden_records

TEAPOT_TEXT = "Handmade stoneware teapot. " * 120

CUP = {
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

TEAPOT = {
    "id": 2,
    "name": "Teapot",
    "description": TEAPOT_TEXT,
    "price": Decimal("1234567.89"),
    "weight": Decimal("-3.14159"),
    "stock": 3,
    "tags": [f"tag{i}" for i in range(1, 401)],
    "sizes": list(range(1, 1001)),
    "attrs": {"a": None, "nested": {"k": [1, 2.5, "x"]}},
    "ref": uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479"),
    "release_date": date(2024, 2, 29),
    "listed_at": datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
    "listed_ms": datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC),
    "updated_at": datetime(2099, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
    "opens_at": time(23, 59, 59, 999999),
    "opens_ms": time(23, 59, 59, 999000),
    "mood": None,
}

TEAPOT_UPDATED = {
    **TEAPOT,
    "price": Decimal("13.99"),
    "stock": 4,
    "updated_at": datetime(2024, 3, 1, tzinfo=UTC),
    "description": UNCHANGED,
    "tags": UNCHANGED,
    "sizes": UNCHANGED,
}


def change(name: str, parser: Parser | None = None) -> ChangeEvent:
    event = golden(name).parse(parser)
    assert isinstance(event, ChangeEvent), name
    return event


def test_every_golden_record_parses() -> None:
    records = golden_records()
    assert len(records) >= 40
    for name, record in records.items():
        assert record.description, name
        record.parse()


def test_snapshot_read_decodes_every_logical_type() -> None:
    event = change("pg-schema-products-r")
    assert event.op == "r"
    assert event.after == CUP
    assert event.before is None
    assert event.key == {"id": 1}
    assert event.source.is_snapshot
    assert event.source.snapshot in ("true", "first", "last")
    assert event.source.connector == "postgresql"
    assert (event.source.db, event.source.schema, event.table) == ("shop", "public", "products")
    assert event.transaction is None
    assert event.unchanged_columns == ()


def test_insert_of_large_values_and_far_future() -> None:
    event = change("pg-schema-products-c")
    assert event.op == "c"
    assert event.after == TEAPOT
    assert event.transaction is not None
    assert event.tx_id == event.transaction.id.split(":")[0]


def test_update_without_touching_toasted_columns_marks_them_unchanged() -> None:
    event = change("pg-schema-products-u")
    assert event.op == "u"
    assert event.before is None  # default replica identity: no old row on update
    assert event.after == TEAPOT_UPDATED
    assert event.unchanged_columns == ("description", "tags", "sizes")
    normalised = event.to_dict()
    assert "description" not in normalised["after"]
    assert "sizes" not in normalised["after"]
    assert normalised["unchanged_columns"] == ["description", "tags", "sizes"]
    assert normalised["after"]["price"] == "13.99"
    assert normalised["after"]["updated_at"] == "2024-03-01T00:00:00Z"


def test_delete_under_default_replica_identity_has_only_the_key() -> None:
    event = change("pg-schema-products-d")
    assert event.op == "d"
    assert event.after is None
    assert event.before_is_key_only
    assert event.before is not None and event.before["id"] == 1
    # Debezium's fillers for NOT NULL columns: not data.
    assert event.before["price"] == Decimal("0.00")
    assert event.before["updated_at"] == datetime(1970, 1, 1, tzinfo=UTC)
    assert event.to_dict()["before"] == {"id": 1}


def test_delete_under_replica_identity_full_has_the_whole_row() -> None:
    event = change("pg-schema-orders-d")
    assert not event.before_is_key_only
    assert event.before == {
        "id": 1,
        "status": "pending",
        "total": Decimal("99.90"),
        "created_at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    assert event.to_dict()["before"]["total"] == "99.90"


def test_update_under_replica_identity_full_has_before() -> None:
    event = change("pg-schema-orders-u")
    assert event.before is not None and event.after is not None
    assert (event.before["status"], event.after["status"]) == ("pending", "paid")
    assert event.after["total"] == Decimal("1050.00")


@pytest.mark.parametrize("config", ["pg-schema", "pg-noschema"])
def test_tombstones_follow_deletes(config: str) -> None:
    for table in ("products", "orders"):
        record = golden(f"{config}-{table}-tombstone")
        assert record.value is None
        tomb = record.parse()
        assert isinstance(tomb, Tombstone)
        assert tomb.key == {"id": 1}
        assert tomb.table == table
        assert tomb.to_dict()["kind"] == "tombstone"


def test_legacy_tombstone_envelope() -> None:
    tomb = golden("legacy-tombstone").parse()
    assert isinstance(tomb, Tombstone)
    assert tomb.key == {"id": 1}


@pytest.mark.parametrize("config", ["pg-schema", "pg-noschema"])
def test_transaction_boundaries_correlate_on_txid(config: str) -> None:
    begin = golden(f"{config}-transaction-begin").parse()
    end = golden(f"{config}-transaction-end").parse()
    first = change(f"{config}-products-c")
    assert isinstance(begin, TransactionBoundary) and isinstance(end, TransactionBoundary)
    assert (begin.status, end.status) == ("BEGIN", "END")
    # The LSN part of the id differs between BEGIN (and the events) and END...
    assert begin.id != end.id
    assert first.transaction is not None and first.transaction.id != end.id
    # ...the txId part does not.
    assert begin.tx_id == end.tx_id == first.tx_id
    assert first.tx_id == str(first.source.tx_id)
    assert begin.event_count is None
    assert end.event_count == 2
    assert end.data_collections == (("public.orders", 1), ("public.products", 1))
    assert end.to_dict()["transaction"]["data_collections"] == {
        "public.orders": 1,
        "public.products": 1,
    }


@pytest.mark.parametrize("config", ["pg-schema", "pg-noschema"])
def test_heartbeat(config: str) -> None:
    beat = golden(f"{config}-heartbeat").parse()
    assert isinstance(beat, Heartbeat)
    assert beat.server_name == "dbserver1"
    assert beat.ts_ms > 1_700_000_000_000
    assert beat.to_dict()["kind"] == "heartbeat"


def test_truncate() -> None:
    event = change("pg-schema-scratch-t")
    assert event.op == "t"
    assert event.key is None
    assert (event.before, event.after) == (None, None)
    assert event.table == "scratch"


@pytest.mark.parametrize("config", ["pg-schema", "pg-noschema"])
def test_logical_decoding_message(config: str) -> None:
    event = change(f"{config}-message")
    assert event.op == "m"
    assert event.after == {"prefix": "audit", "content": b"checkout-42"}
    assert event.table is None
    assert event.to_dict()["after"] == {"prefix": "audit", "content": "Y2hlY2tvdXQtNDI="}


def test_schemaless_values_pass_through_without_a_registry() -> None:
    event = change("pg-noschema-products-r")
    assert event.after is not None
    assert event.after["price"] == "BOI="
    assert event.after["weight"] == {"scale": 2, "value": "GQ=="}
    assert event.after["updated_at"] == "2024-01-02T03:04:05.123456Z"
    assert event.after["release_date"] == -1767


REGISTRY = ColumnTypes(
    {
        "public.products": {
            "price": DecimalColumn(scale=2),
            "weight": DecimalColumn(),
            "attrs": "json",
            "ref": "uuid",
            "release_date": "date",
            "listed_at": "timestamp",
            "listed_ms": "timestamp_ms",
            "updated_at": "timestamp",
            "opens_at": "time",
            "opens_ms": "time_ms",
        },
        "public.orders": {"total": DecimalColumn(2), "created_at": "timestamp"},
    }
)


def test_schemaless_values_decode_with_the_registry() -> None:
    parser = Parser(column_types=REGISTRY)
    assert change("pg-noschema-products-r", parser).after == CUP
    assert change("pg-noschema-products-c", parser).after == TEAPOT
    updated = change("pg-noschema-products-u", parser)
    assert updated.after == TEAPOT_UPDATED
    assert updated.unchanged_columns == ("description", "tags", "sizes")
    deleted = change("pg-noschema-products-d", parser)
    assert deleted.before_is_key_only
    orders = change("pg-noschema-orders-d", parser)
    assert orders.before is not None and orders.before["total"] == Decimal("99.90")
    assert not orders.before_is_key_only


def test_schemaless_toast_placeholder_detected_without_registry() -> None:
    event = change("pg-noschema-products-u")
    assert event.unchanged_columns == ("description", "tags", "sizes")
    assert event.after is not None and event.after["sizes"] is UNCHANGED
    assert change("pg-noschema-products-d").before_is_key_only


def test_decimal_handling_mode_string() -> None:
    plain = change("pg-string-products-r")
    assert plain.after is not None and plain.after["price"] == "12.50"
    parser = Parser(
        column_types=ColumnTypes(
            {"public.products": {"price": DecimalColumn(2), "weight": DecimalColumn()}},
            decimal_handling_mode="string",
        )
    )
    event = change("pg-string-products-c", parser)
    assert event.after is not None
    assert event.after["price"] == Decimal("1234567.89")
    assert event.after["weight"] == Decimal("-3.14159")
    # The rest still decodes through its logical types.
    assert event.after["updated_at"] == TEAPOT["updated_at"]
    assert change("pg-string-products-d", parser).before_is_key_only


def test_decimal_handling_mode_double() -> None:
    plain = change("pg-double-products-u")
    assert plain.after is not None and plain.after["price"] == 13.99
    parser = Parser(
        column_types=ColumnTypes(
            {"public.products": {"price": DecimalColumn(2), "weight": DecimalColumn()}},
            decimal_handling_mode="double",
        )
    )
    event = change("pg-double-products-r", parser)
    assert event.after is not None
    assert event.after["price"] == Decimal("12.50")
    assert str(event.after["price"]) == "12.50"
    assert event.after["weight"] == Decimal("0.25")


def test_time_precision_mode_connect() -> None:
    event = change("pg-connect-products-r")
    expected = {**CUP, "listed_at": datetime(1969, 7, 20, 20, 17, 40, 123000, tzinfo=UTC)}
    assert event.after == expected
    teapot = change("pg-connect-products-c")
    assert teapot.after is not None
    assert teapot.after["opens_at"] == time(23, 59, 59, 999000)


def test_normalised_form_of_a_change() -> None:
    event = change("pg-schema-products-r")
    out = event.to_dict()
    assert list(out) == [
        "kind",
        "op",
        "connector",
        "db",
        "schema",
        "table",
        "key",
        "before",
        "after",
        "source_ts_ms",
        "ts_ms",
        "lsn",
        "commit_lsn",
        "tx_id",
        "snapshot",
        "transaction",
        "binlog",
        "unchanged_columns",
        "event_id",
        "topic",
        "partition",
        "offset",
    ]
    assert list(out) == list(NORMALISED_KEYS)
    assert out["kind"] == "change"
    assert out["after"] == {
        "id": 1,
        "name": "Espresso Cup",
        "description": "Small ceramic cup",
        "price": "12.50",
        "weight": "0.25",
        "stock": 10,
        "tags": ["kitchen", "ceramic"],
        "sizes": [1, 2, 3],
        "attrs": {"color": "blue", "dims": [8, 6]},
        "ref": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "release_date": "1965-03-01",
        "listed_at": "1969-07-20T20:17:40.123456Z",
        "listed_ms": "1969-07-20T20:17:40.123000Z",
        "updated_at": "2024-01-02T03:04:05.123456Z",
        "opens_at": "08:30:15.500000",
        "opens_ms": "08:30:15.500000",
        "mood": "happy",
    }
    assert out["binlog"] is None
    assert out["topic"] == "dbserver1.public.products"
    assert out["lsn"] == event.source.lsn
    assert out["commit_lsn"] is None  # a snapshot read: sequence [null, "<snapshot lsn>"]
    assert change("pg-schema-orders-u").to_dict()["commit_lsn"] == 28330144
    assert len(out["event_id"]) == 32
