"""Out-of-range values: a value of the right JSON type that its Python type (or the documented
range) cannot hold raises ``ParseError`` with a stable code and a message naming the field.

Every logical type, the envelope's epoch milliseconds, text integers from headers, decimals
with absurd scales or exponents and JSON nested deeper than the parser re-serialises; each from
``parse_record`` and ``parse_view`` alike, and never through the last-line safety net
(``invalid_value``), which is tested on its own at the end.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from cdc_events import ChangeEvent, ColumnTypes, DecimalColumn, ParseError, Parser
from cdc_events.testing import KafkaRecord, make_change, make_heartbeat, make_transaction

MIN_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
DECIMAL = "org.apache.kafka.connect.data.Decimal"
VARIABLE = "io.debezium.data.VariableScaleDecimal"
# 2000 bytes of two's complement: about 4800 digits, over Python's int-to-str limit (4300).
HUGE_UNSCALED = base64.b64encode(b"\x7f" + b"\xff" * 1999).decode()


def with_column(
    name: str | None, wire: str, value: Any, parameters: Any = None, **extra: Any
) -> KafkaRecord:
    """A schema-enabled products change whose column ``x`` has the logical type ``name``."""
    record = make_change("c", after={"id": 1, "x": "-"}, with_schema=True)
    doc = orjson.loads(record.value or b"")
    for side in doc["schema"]["fields"][:2]:
        for field in side["fields"]:
            if field["field"] == "x":
                field.update(type=wire, name=name, **extra)
                if name is None:
                    del field["name"]
                if parameters is not None:
                    field["parameters"] = parameters
    doc["payload"]["after"]["x"] = value
    return KafkaRecord(record.topic, 0, 0, record.key, orjson.dumps(doc))


def edited(record: KafkaRecord, edit: Any) -> KafkaRecord:
    doc = orjson.loads(record.value or b"")
    edit(doc.get("payload", doc))
    return KafkaRecord(record.topic, 0, 0, record.key, orjson.dumps(doc), record.headers)


def error_of(record: KafkaRecord, **parser_args: Any) -> ParseError:
    """The ParseError of ``parse_record``; ``parse_view`` (on a fresh parser) raises the same."""
    args = (record.topic, 0, 0, record.key, record.value, record.headers or None)
    with pytest.raises(ParseError) as info:
        Parser(**parser_args).parse_record(*args)
    with pytest.raises(ParseError) as view_info:
        Parser(**parser_args).parse_view(*args)
    error = info.value
    assert (view_info.value.code, view_info.value.message) == (error.code, error.message)
    assert error.code != "invalid_value", error.message  # a precise check, not the safety net
    return error


def parsed(record: KafkaRecord, **parser_args: Any) -> ChangeEvent:
    args = (record.topic, 0, 0, record.key, record.value, record.headers or None)
    event = Parser(**parser_args).parse_record(*args)
    assert isinstance(event, ChangeEvent)
    view = Parser(**parser_args).parse_view(*args)
    assert view.after == event.after  # type: ignore[union-attr]
    return event


# -- logical types ----------------------------------------------------------------------------

OUT_OF_RANGE: list[tuple[str, str, Any, Any, str]] = [
    # (logical type, wire type, value, schema parameters, code)
    (
        "io.debezium.time.ZonedTimestamp",
        "string",
        "0001-01-01T00:00:00+01:00",
        None,
        "type_mismatch",
    ),
    (
        "io.debezium.time.ZonedTimestamp",
        "string",
        "9999-12-31T23:59:59-01:00",
        None,
        "type_mismatch",
    ),
    (
        "io.debezium.time.ZonedTimestamp",
        "string",
        "9999-12-31T23:59:59.999999999-00:01",
        None,
        "type_mismatch",
    ),
    ("io.debezium.time.ZonedTimestamp", "string", "+10000-01-01T00:00:00Z", None, "type_mismatch"),
    ("org.apache.kafka.connect.data.Timestamp", "int64", MAX_MS + 1, None, "type_mismatch"),
    ("org.apache.kafka.connect.data.Timestamp", "int64", MIN_MS - 1, None, "type_mismatch"),
    ("io.debezium.time.Timestamp", "int64", 2**63 - 1, None, "type_mismatch"),
    ("io.debezium.time.Timestamp", "int64", -(2**63), None, "type_mismatch"),
    ("io.debezium.time.MicroTimestamp", "int64", 2**63 - 1, None, "type_mismatch"),
    ("io.debezium.time.MicroTimestamp", "int64", -(2**63), None, "type_mismatch"),
    ("io.debezium.time.MicroTimestamp", "int64", 2**64 - 1, None, "type_mismatch"),
    ("io.debezium.time.NanoTimestamp", "int64", 1e30, None, "type_mismatch"),
    ("org.apache.kafka.connect.data.Date", "int32", 2_932_897, None, "type_mismatch"),
    ("io.debezium.time.Date", "int32", -719_163, None, "type_mismatch"),
    ("io.debezium.time.Date", "int32", 2**63 - 1, None, "type_mismatch"),
    ("io.debezium.time.Date", "int32", -(2**63), None, "type_mismatch"),
    ("org.apache.kafka.connect.data.Time", "int32", 86_400_000, None, "type_mismatch"),
    ("io.debezium.time.Time", "int32", -1, None, "type_mismatch"),
    ("io.debezium.time.MicroTime", "int64", 2**63 - 1, None, "type_mismatch"),
    ("io.debezium.time.NanoTime", "int64", -(2**63), None, "type_mismatch"),
    ("io.debezium.time.ZonedTime", "string", "24:00:00Z", None, "type_mismatch"),
    (DECIMAL, "bytes", "AQ==", {"scale": "99999999999999999999"}, "bad_decimal"),
    (DECIMAL, "bytes", "AQ==", {"scale": "-99999999999999999999"}, "bad_decimal"),
    (DECIMAL, "bytes", "AQ==", {"scale": "16384"}, "bad_decimal"),
    (DECIMAL, "bytes", "AQ==", {"scale": "-16384"}, "bad_decimal"),
    (DECIMAL, "bytes", HUGE_UNSCALED, {"scale": "2"}, "bad_decimal"),
    (VARIABLE, "struct", {"scale": 2**63 - 1, "value": "AQ=="}, None, "bad_decimal"),
    (VARIABLE, "struct", {"scale": -(2**63), "value": "AQ=="}, None, "bad_decimal"),
    (VARIABLE, "struct", {"scale": 2**64 - 1, "value": "AQ=="}, None, "bad_decimal"),
    (VARIABLE, "struct", {"scale": 16_384, "value": "AQ=="}, None, "bad_decimal"),
    (VARIABLE, "struct", {"scale": 0, "value": HUGE_UNSCALED}, None, "bad_decimal"),
]


@pytest.mark.parametrize(
    ("logical", "wire", "value", "parameters", "code"),
    OUT_OF_RANGE,
    ids=[f"{c[0].rsplit('.', 1)[-1]}-{str(c[2])[:24]}-{c[3]}" for c in OUT_OF_RANGE],
)
def test_out_of_range_logical_values(
    logical: str, wire: str, value: Any, parameters: Any, code: str
) -> None:
    error = error_of(with_column(logical, wire, value, parameters))
    assert error.code == code
    assert "after.x" in error.message


@pytest.mark.parametrize(
    ("logical", "wire", "value", "parameters", "expected"),
    [
        (
            "io.debezium.time.ZonedTimestamp",
            "string",
            "0001-01-01T00:00:00-01:00",
            None,
            datetime(1, 1, 1, 1, tzinfo=UTC),
        ),
        (
            "io.debezium.time.ZonedTimestamp",
            "string",
            "9999-12-31T23:59:59+01:00",
            None,
            datetime(9999, 12, 31, 22, 59, 59, tzinfo=UTC),
        ),
        (
            "io.debezium.time.Timestamp",
            "int64",
            MAX_MS,
            None,
            datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        ),
        ("io.debezium.time.Timestamp", "int64", MIN_MS, None, datetime(1, 1, 1, tzinfo=UTC)),
        (
            "io.debezium.time.NanoTimestamp",
            "int64",
            -(2**63),
            None,
            datetime(1677, 9, 21, 0, 12, 43, 145224, tzinfo=UTC),
        ),
        ("io.debezium.time.Date", "int32", 2_932_896, None, date(9999, 12, 31)),
        ("io.debezium.time.Date", "int32", -719_162, None, date(1, 1, 1)),
        (DECIMAL, "bytes", "AQ==", {"scale": "16383"}, Decimal("1E-16383")),
        (DECIMAL, "bytes", "AQ==", {"scale": "-16383"}, Decimal("1E+16383")),
        (VARIABLE, "struct", {"scale": 16_383, "value": "AQ=="}, None, Decimal("1E-16383")),
    ],
)
def test_values_at_the_edges_of_the_range_decode(
    logical: str, wire: str, value: Any, parameters: Any, expected: Any
) -> None:
    event = parsed(with_column(logical, wire, value, parameters))
    assert event.after is not None
    assert event.after["x"] == expected


def test_the_message_says_why() -> None:
    error = error_of(
        with_column("io.debezium.time.ZonedTimestamp", "string", "0001-01-01T00:00:00+01:00")
    )
    assert "between years 1 and 9999" in error.message
    error = error_of(with_column(VARIABLE, "struct", {"scale": 2**63 - 1, "value": "AQ=="}))
    assert "scale" in error.message and "16383" in error.message
    error = error_of(with_column(DECIMAL, "bytes", HUGE_UNSCALED, {"scale": "2"}))
    assert "digits" in error.message


# -- the registry (schemaless values) ---------------------------------------------------------


def registry(mode: str = "precise", **columns: Any) -> ColumnTypes:
    return ColumnTypes({"public.products": columns}, decimal_handling_mode=mode)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "spec", "value", "code"),
    [
        ("precise", "timestamp", "0001-01-01T00:00:00+01:00", "type_mismatch"),
        ("precise", "timestamp", "9999-12-31T23:59:59-01:00", "type_mismatch"),
        ("precise", "timestamp", 2**63 - 1, "type_mismatch"),
        ("precise", "timestamp_ms", -(2**63), "type_mismatch"),
        ("precise", "date", 2**31, "type_mismatch"),
        ("precise", "time_ns", 2**63 - 1, "type_mismatch"),
        ("precise", DecimalColumn(2), HUGE_UNSCALED, "bad_decimal"),
        ("precise", DecimalColumn(2), {"scale": 2**63 - 1, "value": "AQ=="}, "bad_decimal"),
        ("string", DecimalColumn(2), "1E+999999999", "bad_decimal"),
        ("string", DecimalColumn(2), "1E+999999999999999999999", "bad_decimal"),
        ("string", DecimalColumn(), "1E-20000", "bad_decimal"),
        ("string", DecimalColumn(), "0E+999999999999999999", "bad_decimal"),
    ],
)
def test_out_of_range_registry_values(mode: str, spec: Any, value: Any, code: str) -> None:
    record = edited(
        make_change("c", after={"id": 1, "x": "-"}), lambda p: p["after"].update(x=value)
    )
    error = error_of(record, column_types=registry(mode, x=spec))
    assert error.code == code
    assert "after.x" in error.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e30, Decimal("1E+30")),
        (-1.7976931348623157e308, Decimal("-1.7976931348623157E+308")),
        (12.345, Decimal("12.34")),  # half to even, as before
    ],
)
def test_large_doubles_are_rounded_to_the_declared_scale(value: float, expected: Decimal) -> None:
    """Double mode: more digits than the default decimal context's 28 are still exact."""
    record = edited(
        make_change("c", after={"id": 1, "x": "-"}), lambda p: p["after"].update(x=value)
    )
    event = parsed(record, column_types=registry("double", x=DecimalColumn(2)))
    assert event.after is not None
    decoded = event.after["x"]
    assert decoded == expected
    assert decoded.as_tuple().exponent == -2


def test_a_registry_scale_out_of_range_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="scale"):
        registry(x=DecimalColumn(10**6))


# -- epoch milliseconds of the envelope, the source block and the side topics -----------------


@pytest.mark.parametrize("ts", [MAX_MS + 1, MIN_MS - 1, 2**63 - 1, -(2**63), 2**64 - 1])
@pytest.mark.parametrize("with_schema", [False, True])
def test_envelope_and_source_ts_ms_out_of_range(ts: int, with_schema: bool) -> None:
    record = make_change("c", after={"id": 1}, with_schema=with_schema)
    error = error_of(edited(record, lambda p: p.update(ts_ms=ts)))
    assert (error.code, error.message.split(":")[0]) == ("type_mismatch", "ts_ms")
    error = error_of(edited(record, lambda p: p["source"].update(ts_ms=ts)))
    assert (error.code, error.message.split(":")[0]) == ("type_mismatch", "source.ts_ms")


def test_ts_ms_at_the_edges_of_the_range_is_kept() -> None:
    record = make_change("c", after={"id": 1})
    event = parsed(
        edited(record, lambda p: (p.update(ts_ms=MAX_MS), p["source"].update(ts_ms=MIN_MS)))
    )
    assert (event.ts_ms, event.source.ts_ms) == (MAX_MS, MIN_MS)


@pytest.mark.parametrize("ts", [MAX_MS + 1, -(2**63)])
def test_side_topic_ts_ms_out_of_range(ts: int) -> None:
    for record in (make_heartbeat(ts), make_transaction("BEGIN", ts_ms=ts)):
        error = error_of(record)
        assert error.code == "type_mismatch"
        assert error.message.startswith("ts_ms:")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("__source_ts_ms", b"99999999999999999999"),
        ("__ts_ms", b"-99999999999999999999"),
        ("__source_ts_ms", b"--5"),
        ("__lsn", "\u00b2".encode()),  # a digit to str.isdigit, not to int()
        ("__lsn", b"9" * 5000),  # over Python's int-to-str limit
        ("__lsn", b" 12"),
    ],
)
def test_text_integers_in_unwrap_headers(header: str, value: bytes) -> None:
    record = KafkaRecord(
        "dbserver1.public.products",
        0,
        0,
        b'{"id":1}',
        b'{"id":1,"name":"cup"}',
        (("__op", b"c"), (header, value)),
    )
    error = error_of(record)
    assert error.code == "type_mismatch"
    assert header in error.message


# -- JSON nested deeper than the parser re-serialises (key, schema, other connectors' source) --

DEEP = b"[" * 300 + b"]" * 300


def test_a_deeply_nested_key() -> None:
    record = make_change("c", after={"id": 1})
    error = error_of(KafkaRecord(record.topic, 0, 0, b'{"id":' + DEEP + b"}", record.value))
    assert error.code == "too_large"
    assert error.message.startswith("key")


def test_a_deeply_nested_source_block() -> None:
    record = edited(
        make_change("c", after={"id": 1}),
        lambda p: p["source"].update(connector="oracle", extra="DEEP"),
    )
    value = (record.value or b"").replace(b'"DEEP"', DEEP)
    error = error_of(KafkaRecord(record.topic, 0, 0, record.key, value))
    assert error.code == "too_large"
    assert error.message.startswith("source")


def test_a_deeply_nested_schema() -> None:
    nested = b'{"type":"string","optional":true}'
    for _ in range(300):
        nested = b'{"type":"array","optional":true,"items":' + nested + b"}"
    record = with_column(None, "array", None, items="DEEP")
    value = (record.value or b"").replace(b'"DEEP"', nested)
    error = error_of(KafkaRecord(record.topic, 0, 0, record.key, value))
    assert error.code == "too_large"
    assert error.message.startswith("schema")


def test_a_deeply_nested_key_schema() -> None:
    nested = b'{"type":"struct","optional":true,"fields":[]}'
    for _ in range(400):
        nested = b'{"type":"struct","optional":true,"fields":[{"field":"a",' + nested[1:] + b"]}"
    record = make_change("c", after={"id": 1})
    key = b'{"schema":' + nested + b',"payload":{"a":null}}'
    error = error_of(KafkaRecord(record.topic, 0, 0, key, record.value))
    assert error.code == "too_large"


# -- the safety net ---------------------------------------------------------------------------


class OpenParser(Parser):
    """A parser whose methods a test can replace (no ``__slots__``, so an instance dict)."""


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("boom"),
        OverflowError("boom"),
        TypeError("boom"),
        ArithmeticError("boom"),
        RecursionError("boom"),
        KeyError("boom"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_unexpected_exception_becomes_invalid_value(
    exc: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Any:
        raise exc

    record = make_change("c", after={"id": 1})
    parser = OpenParser()
    monkeypatch.setattr(parser, "_value", broken)  # used by parse_record and parse_view
    for call in (parser.parse_record, parser.parse_view):
        with pytest.raises(ParseError) as info:
            call(record.topic, 0, 0, record.key, record.value)
        assert info.value.code == "invalid_value"
        assert info.value.__cause__ is exc
        assert type(exc).__name__ in info.value.message


def test_memory_error_is_not_a_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> Any:
        raise MemoryError

    record = make_change("c", after={"id": 1})
    parser = OpenParser()
    monkeypatch.setattr(parser, "_value", broken)
    with pytest.raises(MemoryError):
        parser.parse_record(record.topic, 0, 0, record.key, record.value)
