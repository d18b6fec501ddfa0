"""The bad records of ``devstack.badinput`` break the parser exactly as their table says."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import orjson
import pytest
from cdc_events import DEFAULT_MAX_BYTES, ParseError, parse_record, parse_user_activity
from cdc_events.testing import golden, make_change
from devstack import FlowCheck
from devstack.badinput import (
    CDC_CODES,
    HEADER_ID,
    HEADER_KIND,
    KINDS,
    OVERSIZED_BYTES,
    PARSER_MAX_BYTES,
    STORE_REFUSED,
    USER_EVENT_CODES,
    BadRecord,
    Injected,
    build_bad_records,
    consumers_of,
    discount_injected,
)


def _templates() -> dict[str, bytes]:
    """Change events as the connector writes them: two captured from the real connector, two
    built with a schema (customers has no decimal column, so one is added and broken)."""
    products = golden("pg-schema-products-c").value
    orders = golden("pg-schema-orders-c").value
    customers = make_change(
        "c",
        table="customers",
        after={"id": 7, "email": "a@example.com", "name": "Ann", "country": "DE"},
        with_schema=True,
    ).value
    items = make_change(
        "r",
        table="order_items",
        after={
            "id": 3,
            "order_id": 1,
            "product_id": 2,
            "quantity": 1,
            "unit_price": Decimal("9.90"),
        },
        with_schema=True,
    ).value
    assert products and orders and customers and items
    return {
        "dbserver1.public.products": products,
        "dbserver1.public.orders": orders,
        "dbserver1.public.customers": customers,
        "dbserver1.public.order_items": items,
    }


def _code(record: BadRecord) -> str:
    try:
        if record.topic == "user-events":
            parse_user_activity(record.value)
        else:
            parse_record(record.topic, 0, 0, record.key, record.value, record.headers)
    except ParseError as exc:
        return exc.code
    return "accepted"


@pytest.mark.parametrize("topic", [*_templates(), "user-events"])
def test_every_kind_gets_the_code_the_parser_really_raises(topic: str) -> None:
    records, skipped = build_bad_records(
        topic, _templates().get(topic), count_per_kind=2, run_id="t1"
    )
    assert skipped == []
    assert Counter(r.kind for r in records) == dict.fromkeys(KINDS, 2)
    for record in records:
        assert _code(record) == record.expected_code, record.kind
    codes = USER_EVENT_CODES if topic == "user-events" else CDC_CODES
    assert {r.kind: r.expected_code for r in records} == codes


def test_the_template_itself_parses_so_only_the_mutation_breaks_it() -> None:
    for topic, value in _templates().items():
        parse_record(topic, 0, 0, b'{"badinput": "x"}', value)


def test_keys_and_headers_are_distinctive_and_unique() -> None:
    records, _ = build_bad_records(
        "dbserver1.public.products", _templates()["dbserver1.public.products"], run_id="r9"
    )
    users, _ = build_bad_records("user-events", None, run_id="r9")
    idents = [r.ident for r in records + users]
    assert len(set(idents)) == len(idents)
    for r in records:
        assert orjson.loads(r.key) == {"badinput": r.ident}
        assert dict(r.headers) == {HEADER_KIND: r.kind.encode(), HEADER_ID: r.ident.encode()}
    assert all(r.key.startswith(b"badinput-r9-") for r in users)


def test_oversized_is_over_the_parsers_limit_and_far_below_the_producers() -> None:
    assert PARSER_MAX_BYTES == DEFAULT_MAX_BYTES
    for topic, template in [*_templates().items(), ("user-events", None)]:
        records, _ = build_bad_records(topic, template, kinds=["oversized"])
        size = len(records[0].value)
        assert PARSER_MAX_BYTES < size <= OVERSIZED_BYTES + 64, topic


def test_a_schemaless_topic_skips_the_kinds_it_cannot_express() -> None:
    schemaless = golden("pg-noschema-products-c").value
    records, skipped = build_bad_records("dbserver1.public.products", schemaless)
    assert {k for _, k, _ in skipped} == {"bad_decimal", "wrong_type"}
    for record in records:
        assert _code(record) == record.expected_code, record.kind


def test_a_topic_without_a_change_event_is_skipped_not_faked() -> None:
    records, skipped = build_bad_records("dbserver1.public.orders", None, kinds=["not_json"])
    assert records == []
    assert skipped[0][:2] == ("dbserver1.public.orders", "not_json")


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        build_bad_records("user-events", None, kinds=["nonsense"])


def _injected(topic: str, op: str) -> Injected:
    return Injected(topic, 0, 1, "not_json", "not_json", "i", b"k", 10, "0" * 64, op)


def test_discount_removes_injected_records_from_the_flow_check() -> None:
    checks = [
        FlowCheck("dbserver1.public.orders", "c", 10, 12),
        FlowCheck("dbserver1.public.orders", "other", 0, 1),
        FlowCheck("dbserver1.public.orders", "x", 0, 1),
        FlowCheck("user-events", "event", 5, 7),
    ]
    injected = [
        _injected("dbserver1.public.orders", "c"),
        _injected("dbserver1.public.orders", "c"),
        _injected("dbserver1.public.orders", "other"),
        _injected("dbserver1.public.orders", "x"),
        _injected("user-events", "other"),
        _injected("user-events", "other"),
    ]
    out = discount_injected(checks, injected)
    assert out == [
        FlowCheck("dbserver1.public.orders", "c", 10, 10),
        FlowCheck("user-events", "event", 5, 5),
    ]
    assert all(c.ok for c in out)


def test_consumers_of_each_topic() -> None:
    assert consumers_of("dbserver1.public.products") == (
        "event-store-writer",
        "stats-aggregator",
        "search-indexer",
    )
    assert consumers_of("dbserver1.public.order_items") == (
        "event-store-writer",
        "stats-aggregator",
        "analytics-flusher",
    )
    assert consumers_of("user-events") == ("event-store-writer", "stats-aggregator")
    assert consumers_of("dbserver1.public.customers") == ("event-store-writer", "stats-aggregator")


@pytest.mark.parametrize("topic", ["dbserver1.public.customers", "user-events"])
def test_a_store_refused_record_parses_and_carries_a_nul_in_its_text(topic: str) -> None:
    records, skipped = build_bad_records(
        topic, _templates().get(topic), kinds=[STORE_REFUSED], count_per_kind=3, run_id="s1"
    )
    assert skipped == []
    assert len(records) == 3
    for record in records:
        assert record.expected_code == "store_rejected"
        assert _code(record) == "accepted"  # it parses: only a store refuses it
        assert b"\\u0000" in record.value
    if topic != "user-events":
        ids = {orjson.loads(r.value)["payload"]["after"]["id"] for r in records}
        assert len(ids) == 3 and min(ids) > 9_000_000_000  # new rows, never a real customer


def test_store_refused_is_skipped_where_a_consumer_could_hold_it() -> None:
    for topic in ("dbserver1.public.products", "dbserver1.public.orders"):
        records, skipped = build_bad_records(topic, _templates()[topic], kinds=[STORE_REFUSED])
        assert records == []
        assert skipped[0][1] == STORE_REFUSED
