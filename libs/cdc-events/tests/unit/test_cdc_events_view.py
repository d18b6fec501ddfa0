"""``Parser.parse_view`` agrees with ``parse_record`` on every record, and takes its own path
for the common PostgreSQL change (the reason it exists).

The two must give the same view (``ChangeView.of`` of the ``ChangeEvent``), the same other
record, or a ``ParseError`` with the same code: over the golden records captured from the real
connector, damaged copies of them, and hand-made records that only the full path may take (the
fuzz tests in ``test_cdc_events_fuzz`` compare the two on mutated and random records too).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from cdc_events import (
    ChangeEvent,
    ChangeView,
    ColumnTypes,
    DecimalColumn,
    ParseError,
    Parser,
)
from cdc_events.testing import golden_records, make_change

RECORDS = list(golden_records().values())
REGISTRY = ColumnTypes(
    {
        "public.products": {"price": DecimalColumn(2), "updated_at": "timestamp"},
        "public.orders": {"total": DecimalColumn(2), "created_at": "timestamp"},
    }
)


class CountingParser(Parser):
    """A parser that counts the records ``parse_view`` hands to the full path."""

    __slots__ = ("full",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.full = 0

    def parse_record(self, *args: Any, **kwargs: Any) -> Any:
        self.full += 1
        return super().parse_record(*args, **kwargs)


def outcome(call: Any) -> Any:
    try:
        return call()
    except ParseError as exc:
        return ("ParseError", exc.code)


def assert_agree(
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Any = None,
    **parser_args: Any,
) -> Any:
    """The view of a fresh parser next to the record of another; returns the view."""
    record = outcome(lambda: Parser(**parser_args).parse_record(topic, 3, 42, key, value, headers))
    view = outcome(lambda: Parser(**parser_args).parse_view(topic, 3, 42, key, value, headers))
    if isinstance(record, ChangeEvent):
        assert type(view) is ChangeView
        assert view == ChangeView.of(record)
    else:
        assert view == record
    return view


@pytest.mark.parametrize("record", RECORDS, ids=[r.name for r in RECORDS])
@pytest.mark.parametrize("registry", [None, REGISTRY], ids=["plain", "registry"])
def test_every_golden_record_agrees(record: Any, registry: ColumnTypes | None) -> None:
    headers = list(record.headers) or None
    assert_agree(record.topic, record.key, record.value, headers, column_types=registry)
    # Twice on one parser: the second read takes the cached schema.
    parser = Parser(column_types=registry)
    first = outcome(
        lambda: parser.parse_view(record.topic, 0, 1, record.key, record.value, headers)
    )
    again = outcome(
        lambda: parser.parse_view(record.topic, 0, 1, record.key, record.value, headers)
    )
    assert first == again


COMMON = [
    r
    for r in RECORDS
    if r.name.startswith(("pg-schema-", "pg-noschema-"))
    and r.name.rsplit("-", 1)[-1] in ("c", "u", "d", "r")
    and "scratch" not in r.name
    and b"__debezium_unavailable_value" not in (r.value or b"")  # TOAST: the full path's
]


@pytest.mark.parametrize("record", COMMON, ids=[r.name for r in COMMON])
def test_common_postgres_changes_take_the_view_path(record: Any) -> None:
    parser = CountingParser(column_types=REGISTRY)
    view = parser.parse_view(record.topic, 0, 1, record.key, record.value)
    assert type(view) is ChangeView
    event = parser.parse_record(record.topic, 0, 1, record.key, record.value)
    assert view == ChangeView.of(event)
    assert parser.full == 1  # only the comparison above went the full way


def test_the_common_paths_are_not_an_empty_list() -> None:
    assert len(COMMON) >= 8


def _with(record: Any, change: Any) -> bytes:
    doc = orjson.loads(record.value)
    change(doc.get("payload", doc))
    return orjson.dumps(doc)


ORDERS_U = next(r for r in COMMON if r.name == "pg-schema-orders-u")


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.__setitem__("transaction", {"id": 5}),
        lambda p: p.__setitem__("transaction", {"id": "1:2", "total_order": "x"}),
        lambda p: p.__setitem__("transaction", []),
        lambda p: p["source"].__setitem__("ts_ms", "1700000000000"),
        lambda p: p["source"].__setitem__("ts_ms", 1.5),
        lambda p: p["source"].__setitem__("lsn", "12"),
        lambda p: p["source"].__setitem__("snapshot", True),
        lambda p: p["source"].__setitem__("connector", "mysql"),
        lambda p: p["source"].__setitem__("connector", "sqlserver"),
        lambda p: p["source"].__setitem__("file", "binlog.000001"),
        lambda p: p["source"].pop("table"),
        lambda p: p.__setitem__("source", None),
        lambda p: p.__setitem__("ts_ms", "12"),
        lambda p: p.__setitem__("op", "x"),
        lambda p: p.__setitem__("op", "t"),
        lambda p: p.__setitem__("after", None),
        lambda p: p.pop("before"),
        lambda p: p.__setitem__("__deleted", "false"),
        lambda p: p["after"].__setitem__("customer_id", "seven"),
        lambda p: p["after"].__setitem__("total", "not base64!"),
        lambda p: p["after"].__setitem__("status", "__debezium_unavailable_value"),
        # Out of range: the view's own checks must turn these away as parse_record refuses them.
        lambda p: p.__setitem__("ts_ms", 2**63 - 1),
        lambda p: p.__setitem__("ts_ms", 253_402_300_800_000),
        lambda p: p.__setitem__("ts_ms", -62_135_596_800_001),
        lambda p: p["source"].__setitem__("ts_ms", -(2**63)),
        lambda p: p["source"].__setitem__("ts_ms", 2**64 - 1),
        lambda p: p["after"].__setitem__("created_at", "0001-01-01T00:00:00+01:00"),
        lambda p: p["after"].__setitem__("created_at", "9999-12-31T23:59:59-01:00"),
        lambda p: p["before"].__setitem__("created_at", "9999-12-31T23:59:59.999999999-00:01"),
        lambda p: p["after"].__setitem__("total", "f" + "/" * 2399),  # over 4300 digits
        # source.sequence: malformed (refused by both) or off Jackson's exact layout.
        lambda p: p["source"].__setitem__("sequence", 5),
        lambda p: p["source"].__setitem__("sequence", ["1", "2"]),
        lambda p: p["source"].__setitem__("sequence", "[1,2]"),
        lambda p: p["source"].__setitem__("sequence", '["1"]'),
        lambda p: p["source"].__setitem__("sequence", '["x","2"]'),
        lambda p: p["source"].__setitem__("sequence", "not json"),
        lambda p: p["source"].__setitem__("sequence", '["18446744073709551616","1"]'),
        lambda p: p["source"].__setitem__("sequence", '[ "1" , "2" ]'),
        lambda p: p["source"].__setitem__("sequence", '["-1","2"]'),
        lambda p: p["source"].__setitem__("sequence", None),
        lambda p: p["source"].pop("sequence"),
    ],
)
def test_records_off_the_common_path_agree(damage: Any) -> None:
    value = _with(ORDERS_U, damage)
    assert_agree(ORDERS_U.topic, ORDERS_U.key, value, column_types=REGISTRY)


ORDERS_D = next(r for r in COMMON if r.name == "pg-schema-orders-d")


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.pop("before"),
        lambda p: p.__setitem__("before", None),
        lambda p: p.__setitem__("before", "x"),
    ],
)
def test_damaged_deletes_agree(damage: Any) -> None:
    value = _with(ORDERS_D, damage)
    assert_agree(ORDERS_D.topic, ORDERS_D.key, value, column_types=REGISTRY)


def test_a_delete_with_a_key_only_before_agrees() -> None:
    record = make_change(
        "d",
        table="orders",
        before={"id": 7, "customer_id": 0, "status": "", "total": None},
        key={"id": 7},
    )
    view = assert_agree(record.topic, record.key, record.value)
    assert view.before_is_key_only


def test_unchanged_toast_columns_agree() -> None:
    toasted = [r for r in RECORDS if b"__debezium_unavailable_value" in (r.value or b"")]
    assert toasted
    for record in toasted:
        view = assert_agree(record.topic, record.key, record.value, column_types=REGISTRY)
        if type(view) is ChangeView and view.op == "u":
            assert "description" in view.unchanged_columns


def test_an_op_header_and_other_kinds_come_back_as_parse_record_returns_them() -> None:
    record = make_change("c", table="orders", after={"id": 1, "status": "new"}, key={"id": 1})
    assert_agree(record.topic, record.key, record.value, [("__op", b"c")])
    for name in ("pg-schema-heartbeat", "pg-schema-transaction-begin", "legacy-tombstone"):
        golden = next(r for r in RECORDS if r.name == name)
        view = assert_agree(golden.topic, golden.key, golden.value)
        assert type(view) is not ChangeView


def test_size_limits_and_bad_bytes_agree() -> None:
    assert_agree(ORDERS_U.topic, ORDERS_U.key, ORDERS_U.value, max_bytes=100)
    assert_agree(ORDERS_U.topic, b"not json", ORDERS_U.value)
    assert_agree(ORDERS_U.topic, ORDERS_U.key, b"\xff\xfe")
    assert_agree(ORDERS_U.topic, ORDERS_U.key, None)


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("ts_ms", -62_135_596_800_000),
        ("ts_ms", 253_402_300_799_999),
        ("source.ts_ms", -62_135_596_800_000),
        ("source.ts_ms", 253_402_300_799_999),
        ("after.created_at", "0001-01-01T00:00:00-01:00"),
        ("after.created_at", "9999-12-31T23:59:59.999999+00:00"),
    ],
)
def test_values_at_the_edges_of_their_range_take_the_view_path(where: str, value: Any) -> None:
    """In range by a hair: the view's own path takes them, and agrees with parse_record."""

    def damage(payload: Any) -> None:
        *parents, name = where.split(".")
        for part in parents:
            payload = payload[part]
        payload[name] = value

    parser = CountingParser(column_types=REGISTRY)
    view = parser.parse_view(ORDERS_U.topic, 3, 42, ORDERS_U.key, _with(ORDERS_U, damage))
    assert type(view) is ChangeView
    assert parser.full == 0
    assert_agree(ORDERS_U.topic, ORDERS_U.key, _with(ORDERS_U, damage), column_types=REGISTRY)


def test_out_of_range_values_are_refused_by_both_with_the_same_error() -> None:
    """Not only agreement: both refuse, with the code and the field in the message."""
    cases = [
        (lambda p: p.__setitem__("ts_ms", 2**63 - 1), "type_mismatch", "ts_ms"),
        (lambda p: p["source"].__setitem__("ts_ms", -(2**63)), "type_mismatch", "source.ts_ms"),
        (
            lambda p: p["after"].__setitem__("created_at", "0001-01-01T00:00:00+01:00"),
            "type_mismatch",
            "after.created_at",
        ),
        (lambda p: p["after"].__setitem__("total", "f" + "/" * 2399), "bad_decimal", "after.total"),
    ]
    for damage, code, field in cases:
        value = _with(ORDERS_U, damage)
        messages = []
        for call in (Parser().parse_record, Parser().parse_view):
            with pytest.raises(ParseError) as info:
                call(ORDERS_U.topic, 0, 0, ORDERS_U.key, value)
            assert info.value.code == code
            assert info.value.message.startswith(field + ":"), info.value.message
            messages.append(info.value.message)
        assert messages[0] == messages[1]


def test_source_fields_of_the_wrong_type_are_refused_or_converted_by_both() -> None:
    """The one-pass source check is shared by both paths: hold it to the checked path's answers
    (text numbers converted, anything else refused), not only to agreement."""
    text_ts = _with(ORDERS_U, lambda p: p["source"].__setitem__("ts_ms", "1700000000000"))
    view = assert_agree(ORDERS_U.topic, ORDERS_U.key, text_ts, column_types=REGISTRY)
    assert view.source_ts_ms == 1_700_000_000_000
    for field, bad in (("ts_ms", 1.5), ("lsn", [1]), ("txId", 1.5), ("table", 5)):
        value = _with(ORDERS_U, lambda p, f=field, b=bad: p["source"].__setitem__(f, b))
        answer = assert_agree(ORDERS_U.topic, ORDERS_U.key, value, column_types=REGISTRY)
        assert answer == ("ParseError", "type_mismatch"), field


@pytest.mark.parametrize(
    ("sequence", "commit_lsn"),
    [
        ('["28330144","28330144"]', 28330144),  # Jackson's layout: the one-pass match
        ('[null,"28330144"]', None),
        ('[ "9" , "10" ]', 9),  # another layout: checked, still the view's own path
        ('["18446744073709551615","1"]', 2**64 - 1),
        ('["-2","1"]', -2),  # a negative Java long: an LSN past 2**63
        (None, None),
    ],
)
def test_valid_sequences_take_the_view_path_with_the_commit_lsn(
    sequence: str | None, commit_lsn: int | None
) -> None:
    value = _with(ORDERS_U, lambda p: p["source"].__setitem__("sequence", sequence))
    parser = CountingParser(column_types=REGISTRY)
    view = parser.parse_view(ORDERS_U.topic, 3, 42, ORDERS_U.key, value)
    assert type(view) is ChangeView
    assert parser.full == 0
    assert view.commit_lsn == commit_lsn
    view = assert_agree(ORDERS_U.topic, ORDERS_U.key, value, column_types=REGISTRY)
    assert view.commit_lsn == commit_lsn
