"""Every malformed input raises ParseError with its stable code and an actionable message."""

from __future__ import annotations

import orjson
import pytest
from cdc_events import ERROR_CODES, ParseError, Parser, parse_record
from cdc_events.testing import golden, make_change

TOPIC = "dbserver1.public.products"


def code_of(
    value: bytes | None,
    key: bytes | None = b'{"id":1}',
    parser: Parser | None = None,
    topic: str = TOPIC,
) -> str:
    with pytest.raises(ParseError) as info:
        (parser or Parser()).parse_record(topic, 0, 0, key, value)
    assert info.value.message
    assert info.value.code in ERROR_CODES
    return info.value.code


def mutated(name: str, edit: object) -> bytes:
    doc = golden(name).json()
    assert callable(edit)
    edit(doc)
    return orjson.dumps(doc)


def test_not_json() -> None:
    assert code_of(b'{"op": "c"') == "not_json"
    assert code_of(b"") == "not_json"
    assert code_of(make_change().value, key=b"{nope") == "not_json"


def test_bad_utf8() -> None:
    assert code_of(b'{"op": "c", "x": "\xff\xfe"}') == "bad_utf8"


def test_not_object() -> None:
    assert code_of(b"[1, 2]") == "not_object"
    assert code_of(b'"text"') == "not_object"
    assert code_of(b'{"schema": {"type": "string"}, "payload": 5}') == "not_object"
    assert code_of(make_change().value, key=b"[1]") == "not_object"


def test_missing_field() -> None:
    assert code_of(b'{"before": null, "after": {"id": 1}}') == "missing_field"
    assert code_of(mutated("pg-schema-products-c", lambda d: d["payload"].pop("source"))) == (
        "missing_field"
    )
    assert code_of(mutated("pg-noschema-products-c", lambda d: d.update(after=None))) == (
        "missing_field"
    )


def test_unknown_op() -> None:
    assert code_of(mutated("pg-schema-products-c", lambda d: d["payload"].update(op="x"))) == (
        "unknown_op"
    )
    assert code_of(mutated("pg-noschema-products-c", lambda d: d.update(op=1))) == "unknown_op"
    bad_status = mutated("pg-noschema-transaction-end", lambda d: d.update(status="COMMIT"))
    assert code_of(bad_status, topic="dbserver1.transaction") == "unknown_op"


def test_bad_decimal() -> None:
    value = mutated("pg-schema-products-c", lambda d: d["payload"]["after"].update(price="!!"))
    assert code_of(value) == "bad_decimal"
    value = mutated(
        "pg-schema-products-c",
        lambda d: d["payload"]["after"].update(weight={"scale": "x", "value": "AQ=="}),
    )
    assert code_of(value) == "bad_decimal"


def test_type_mismatch_against_the_declared_schema() -> None:
    cases = [
        lambda d: d["payload"]["after"].update(stock="ten"),  # int32
        lambda d: d["payload"]["after"].update(name=None),  # required
        lambda d: d["payload"]["after"].update(release_date="2024-01-01"),  # Date is days
        lambda d: d["payload"]["after"].update(updated_at="yesterday"),  # ZonedTimestamp
        lambda d: d["payload"]["after"].update(ref="not-a-uuid"),
        lambda d: d["payload"]["after"].update(attrs="{broken"),  # Json
        lambda d: d["payload"]["after"].update(extra_column=1),  # not in the schema
        lambda d: d["payload"]["after"].update(opens_at=86_400_000_000),  # 24:00
        lambda d: d["payload"]["after"].update(release_date=10**9),  # beyond year 9999
        lambda d: d["payload"].update(source="db"),
    ]
    for edit in cases:
        assert code_of(mutated("pg-schema-products-c", edit)) == "type_mismatch"


def test_type_mismatch_message_names_the_field() -> None:
    value = mutated("pg-schema-products-c", lambda d: d["payload"]["after"].update(stock="ten"))
    with pytest.raises(ParseError) as info:
        parse_record(TOPIC, 0, 0, None, value)
    assert "after.stock" in info.value.message


def test_too_large_is_configurable() -> None:
    record = golden("pg-schema-products-r")
    assert record.value is not None
    assert code_of(record.value, parser=Parser(max_bytes=1000)) == "too_large"
    assert code_of(b"{}", key=b"x" * 2000, parser=Parser(max_bytes=1000)) == "too_large"
    assert code_of(b" " * (1 << 20) + b"{}") == "too_large"  # the 1 MiB default
    Parser(max_bytes=1 << 16).parse_record(TOPIC, 0, 0, record.key, record.value)


def test_input_of_the_wrong_python_type() -> None:
    with pytest.raises(ParseError) as info:
        parse_record(TOPIC, 0, 0, None, 42)  # type: ignore[arg-type]
    assert info.value.code == "type_mismatch"


def test_error_is_picklable_with_its_code() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(ParseError("not_json", "boom")))
    assert (err.code, err.message) == ("not_json", "boom")
