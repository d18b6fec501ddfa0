"""The decoder on records captured from the real connector and on user-activity events, and
what ships with the package (the table definition, the projection query of migration 0004)."""

from __future__ import annotations

import dataclasses
import importlib.util
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from cdc_events import ChangeEvent, ParseError, parse_record, source_version
from cdc_events.testing import golden, make_change, make_user_activity
from consumer_runtime import InMemoryMessage, PermanentError
from stats_aggregator import Decoder, RowChange, UserEvent, inventory_table_definition

REPO = Path(__file__).resolve().parents[4]


def _message(record: object) -> InMemoryMessage:
    def raw(v: object) -> bytes | None:
        return v.encode() if isinstance(v, str) else v  # type: ignore[return-value]

    return InMemoryMessage(
        record.topic,  # type: ignore[attr-defined]
        record.partition,  # type: ignore[attr-defined]
        record.offset,  # type: ignore[attr-defined]
        raw(record.key),  # type: ignore[attr-defined]
        raw(record.value),  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("form", ["pg-schema", "pg-noschema"])
def test_captured_product_changes_decode_with_and_without_schemas(form: str) -> None:
    change = Decoder()(_message(golden(f"{form}-products-u")))
    assert isinstance(change, RowChange)
    assert (change.table, change.key, change.op) == ("products", 2, "u")
    assert change.values == ("Teapot", Decimal("13.99"), 4)
    assert change.lsn is not None and change.event_id


@pytest.mark.parametrize("with_schema", [True, False])
def test_order_totals_and_times_are_typed(with_schema: bool) -> None:
    at = datetime(2024, 3, 1, 23, 59, 59, 123456, tzinfo=UTC)
    after = {"id": 3, "customer_id": 2, "status": "paid", "total": Decimal("12.50"),
             "created_at": at}  # fmt: skip
    change = Decoder()(_message(make_change("u", table="orders", after=after,
                                            with_schema=with_schema)))  # fmt: skip
    assert isinstance(change, RowChange) and change.values is not None
    assert change.values == (2, "paid", Decimal("12.50"), at)


@pytest.mark.parametrize("form", ["pg-schema", "pg-noschema"])
def test_captured_changes_carry_their_source_version_in_emitted_order(form: str) -> None:
    # One capture of products: the snapshot read (``last``), then the streamed c/u/d.
    decode = Decoder()
    records = [golden(f"{form}-products-{op}") for op in "rcud"]
    changes = [decode(_message(r)) for r in records]
    assert all(isinstance(c, RowChange) for c in changes)
    versions = [c.version for c in changes]  # type: ignore[union-attr]
    assert versions == sorted(versions) and len(set(versions)) == 4
    # ``q`` + generation key (20 digits) + class: ``1`` the snapshot read, ``2`` streamed.
    assert all(v.startswith("q") and len(v) == 62 for v in versions)
    assert versions[0][21] == "1" and all(v[21] == "2" for v in versions[1:])
    # The read is the snapshot's last: it carries the sweep version of its table, below it
    # (and so below every later change) and above every version of an earlier generation.
    sweeps = [c.sweep for c in changes]  # type: ignore[union-attr]
    assert sweeps[1:] == [None, None, None]
    assert sweeps[0] is not None and sweeps[0][21] == "0" and sweeps[0] < versions[0]
    assert sweeps[0][:21] == versions[0][:21]
    for record, version in zip(records, versions, strict=True):
        event = parse_record(record.topic, record.partition, record.offset, record.key,
                             record.value)  # fmt: skip
        assert isinstance(event, ChangeEvent) and version == source_version(event)


def test_deletes_tombstones_heartbeats_and_transactions() -> None:
    decode = Decoder()
    delete = decode(_message(golden("pg-schema-products-d")))
    assert isinstance(delete, RowChange) and delete.op == "d" and delete.values is None
    for name in ("pg-schema-products-tombstone", "pg-schema-heartbeat",
                 "pg-schema-transaction-begin"):  # fmt: skip
        assert decode(_message(golden(name))) is None


def test_a_truncate_goes_to_the_dead_letter_queue() -> None:
    record = golden("pg-schema-scratch-t")
    value = record.value if isinstance(record.value, bytes) else str(record.value).encode()
    truncate = dataclasses.replace(
        record,
        topic="dbserver1.public.orders",
        value=value.replace(b'"table":"scratch"', b'"table":"orders"'),
    )
    with pytest.raises(PermanentError, match="truncate"):
        Decoder()(_message(truncate))


def test_an_order_without_a_status_is_a_permanent_error() -> None:
    record = make_change(
        "c", table="orders", after={"id": 1, "customer_id": 2, "status": None,
                                    "total": Decimal("1.00"), "created_at": None},
    )  # fmt: skip
    with pytest.raises(PermanentError, match="without status, created_at"):
        Decoder()(_message(record))


def test_user_events_keep_the_front_end_duration() -> None:
    value = orjson.loads(make_user_activity("view", event_id="e", user_id="7"))
    msg = InMemoryMessage("user-events", 1, 42, b"7", orjson.dumps(value | {"duration": 12.25}))
    event = Decoder()(msg)
    assert isinstance(event, UserEvent)
    assert (event.user_id, event.duration, event.offset) == ("7", Decimal("12.25"), 42)
    bad = InMemoryMessage("user-events", 0, 0, None, orjson.dumps(value | {"duration": "x"}))
    with pytest.raises(ParseError):
        Decoder()(bad)


def test_the_packaged_inventory_table_definition_is_the_canonical_one() -> None:
    canonical = orjson.loads((REPO / "deploy/dynamodb/inventory-realtime.json").read_bytes())
    assert inventory_table_definition() == canonical


def test_the_projection_query_is_the_predicate_of_the_partial_index() -> None:
    # PostgreSQL uses st_products_unprojected only for a query that implies its predicate.
    from stats_aggregator.store import MIGRATIONS, UNPROJECTED

    path = MIGRATIONS / "versions" / "0004_source_versions.py"
    spec = importlib.util.spec_from_file_location("stats_migration_0004", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration._UNPROJECTED == UNPROJECTED
