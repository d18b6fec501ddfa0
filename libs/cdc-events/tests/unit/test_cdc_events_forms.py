"""Forms the embedded stack does not produce: MySQL, ExtractNewRecordState, builders."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
from cdc_events import (
    UNCHANGED,
    BinlogPosition,
    ChangeEvent,
    ColumnTypes,
    DecimalColumn,
    Heartbeat,
    Parser,
    SchemaChange,
    Tombstone,
    TransactionBoundary,
    parse_record,
)
from cdc_events.testing import (
    golden,
    make_change,
    make_heartbeat,
    make_tombstone,
    make_transaction,
)

GTID = "0e4d5dcd-a33b-11ea-80f1-02010a22a99e"


def change(name: str, parser: Parser | None = None) -> ChangeEvent:
    event = golden(name).parse(parser)
    assert isinstance(event, ChangeEvent)
    return event


def test_mysql_source_block_and_binlog_position() -> None:
    event = change("mysql-orders-c")
    assert event.source.connector == "mysql"
    assert (event.source.db, event.source.schema, event.table) == ("inventory", None, "orders")
    assert event.source.binlog == BinlogPosition(
        file="mysql-bin.000003", pos=4015, row=0, server_id=223344, gtid=f"{GTID}:1517"
    )
    assert event.tx_id == f"{GTID}:1517"
    assert event.source.lsn is None
    out = event.to_dict()
    assert out["binlog"] == {
        "file": "mysql-bin.000003",
        "pos": 4015,
        "row": 0,
        "server_id": 223344,
        "gtid": f"{GTID}:1517",
    }
    assert out["schema"] is None and out["db"] == "inventory"


def test_mysql_update_with_schema_decodes_decimals_and_dates() -> None:
    event = change("mysql-orders-u")
    assert event.before is not None and event.after is not None
    assert event.before["total"] == Decimal("3.08")
    assert event.after["total"] == Decimal("4.62")
    assert event.after["order_date"] == date(2024, 1, 2)
    assert event.after["placed_at"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert event.source.binlog is not None and event.source.binlog.row == 1


def test_mysql_delete_is_a_full_row() -> None:
    event = change("mysql-orders-d")
    assert not event.before_is_key_only


def test_older_boolean_snapshot_flag() -> None:
    event = change("mysql-orders-r-legacy-snapshot")
    assert event.source.snapshot == "true"
    assert event.source.is_snapshot
    assert event.transaction is None


def test_mysql_schema_change() -> None:
    ddl = golden("mysql-schema-change").parse()
    assert isinstance(ddl, SchemaChange)
    assert ddl.db == "inventory"
    assert ddl.ddl == "ALTER TABLE orders ADD COLUMN note VARCHAR(255) NULL"
    assert ddl.table_changes[0]["type"] == "ALTER"
    assert ddl.source.binlog is not None and ddl.source.binlog.pos == 5120
    out = ddl.to_dict()
    assert out["kind"] == "schema_change"
    assert out["after"]["ddl"] == ddl.ddl


def test_mysql_side_topics() -> None:
    beat = golden("mysql-heartbeat").parse()
    assert isinstance(beat, Heartbeat) and beat.ts_ms == 1704164645500
    begin = golden("mysql-transaction-begin").parse()
    end = golden("mysql-transaction-end").parse()
    assert isinstance(begin, TransactionBoundary) and isinstance(end, TransactionBoundary)
    # A GTID has a colon too, but is not a PostgreSQL txId:lsn: kept whole.
    assert begin.tx_id == end.tx_id == f"{GTID}:1517" == change("mysql-orders-c").tx_id
    assert end.data_collections == (("inventory.orders", 1),)


def test_unwrap_form_without_schema() -> None:
    event = change("unwrap-products-u")
    assert event.op == "u"
    assert event.after == {
        "id": 2,
        "name": "Teapot",
        "description": UNCHANGED,
        "price": "BXc=",
        "stock": 4,
        "updated_at": "2024-03-01T00:00:00.000000Z",
    }
    assert event.unchanged_columns == ("description",)
    assert event.table == "products" and event.source.schema == "public"
    assert event.source.ts_ms == 1709251200000
    assert event.source.lsn == 28329784


def test_unwrap_rewritten_delete_is_op_d() -> None:
    event = change("unwrap-products-d")
    assert event.op == "d"
    assert event.after is None
    assert event.before is not None and "__deleted" not in event.before
    assert event.before_is_key_only


def test_unwrap_form_with_schema_decodes_and_strips_metadata() -> None:
    event = change("unwrap-products-c")
    assert event.after == {
        "id": 3,
        "name": "Mug",
        "price": Decimal("12.50"),
        "updated_at": datetime(2024, 3, 2, 10, 0, 0, 500000, tzinfo=UTC),
    }
    assert event.source.ts_ms == 1709373600500


def test_unwrap_form_with_metadata_in_headers() -> None:
    parser = Parser(column_types=ColumnTypes({"public.products": {"price": DecimalColumn(2)}}))
    event = change("unwrap-products-c-headers", parser)
    assert event.op == "c"
    assert event.source.ts_ms == 1709452800000
    assert event.after is not None and event.after["price"] == Decimal("5.00")


def test_unwrap_rewrite_without_op_field() -> None:
    value = orjson.dumps({"id": 9, "name": "x", "__deleted": "true"})
    event = parse_record("dbserver1.public.products", 0, 0, b'{"id":9}', value)
    assert isinstance(event, ChangeEvent) and event.op == "d"


def test_builders_round_trip_through_the_parser() -> None:
    after = {
        "id": 7,
        "price": Decimal("12.50"),
        "at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "day": date(1960, 5, 6),
        "naive": datetime(1969, 12, 31, 23, 59, 59, 999999),
        "doc": {"a": [1, 2]},
        "flag": True,
        "note": None,
    }
    event = make_change("c", after=after, with_schema=True).parse()
    assert isinstance(event, ChangeEvent)
    assert event.after == {**after, "naive": datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)}
    assert event.key == {"id": 7}
    mysql = make_change(
        "u",
        connector="mysql",
        db="inventory",
        table="orders",
        before={"id": 1, "n": 1},
        after={"id": 1, "n": 2},
        binlog=("mysql-bin.000009", 77, 2),
    ).parse()
    assert isinstance(mysql, ChangeEvent)
    assert mysql.source.binlog == BinlogPosition("mysql-bin.000009", 77, 2, 223344, None)
    assert mysql.topic == "dbserver1.inventory.orders"
    assert isinstance(make_tombstone({"id": 1}).parse(), Tombstone)
    assert isinstance(make_heartbeat().parse(), Heartbeat)
    end = make_transaction("END", collections={"public.orders": 2}).parse()
    assert isinstance(end, TransactionBoundary) and end.event_count == 2


def test_json_null_value_is_a_tombstone() -> None:
    assert isinstance(
        parse_record("dbserver1.public.products", 0, 0, b'{"id":1}', b"null"), Tombstone
    )


def test_registry_rejects_unknown_column_types() -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown column type"):
        ColumnTypes({"public.products": {"price": "money"}})
