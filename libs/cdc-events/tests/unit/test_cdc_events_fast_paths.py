"""The fast paths agree with the checked, column-by-column ones on every row.

``RowDecoder.decode`` tries a generated function first and falls back to ``_decode_checked``;
the schemaless row skips its per-value placeholder test when a scan finds none; some decoders
inline their common case. Each must give the checked path's answer, error included.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from cdc_events import UNCHANGED, ParseError
from cdc_events._decimal import decimal_decoder, decode_decimal
from cdc_events._logical import (
    PLACEHOLDER,
    PLACEHOLDER_B64,
    PLACEHOLDER_CODES,
    decode_uuid,
)
from cdc_events._schema import RowDecoder, compile_row, passthrough_row
from hypothesis import given
from hypothesis import strategies as st


def _field(name: str, wire: str, logical: str | None = None, optional: bool = True) -> Any:
    field: dict[str, Any] = {"field": name, "type": wire, "optional": optional}
    if logical is not None:
        field["name"] = logical
    if logical == "org.apache.kafka.connect.data.Decimal":
        field["parameters"] = {"scale": "2"}
    if wire == "array":
        field["items"] = {"type": "int32", "optional": True}
    return field


SCHEMA = {
    "type": "struct",
    "fields": [
        _field("id", "int32", optional=False),
        _field("name", "string", optional=False),
        _field("price", "bytes", "org.apache.kafka.connect.data.Decimal"),
        _field("at_us", "int64", "io.debezium.time.MicroTimestamp"),
        _field("at_ms", "int64", "io.debezium.time.Timestamp"),
        _field("at_ns", "int64", "io.debezium.time.NanoTimestamp"),
        _field("day", "int32", "io.debezium.time.Date"),
        _field("t_ms", "int32", "io.debezium.time.Time"),
        _field("t_us", "int64", "io.debezium.time.MicroTime"),
        _field("t_ns", "int64", "io.debezium.time.NanoTime"),
        _field("ref", "string", "io.debezium.data.Uuid"),
        _field("codes", "array"),
        _field("ok", "boolean"),
        _field("ratio", "double"),
    ],
}
BASE: dict[str, Any] = {
    "id": 1,
    "name": "cup",
    "price": "BOI=",
    "at_us": 1_704_164_645_123_456,
    "at_ms": 1_704_164_645_123,
    "at_ns": 1_704_164_645_123_456_789,
    "day": 19_724,
    "t_ms": 30_615_500,
    "t_us": 30_615_500_001,
    "t_ns": 30_615_500_001_999,
    "ref": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "codes": [1, 2],
    "ok": True,
    "ratio": 1.5,
}
ROW = compile_row(SCHEMA, "after")


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except ParseError as exc:
        return ("error", exc.code, exc.message)


def _agree(decoder: RowDecoder, raw: Any) -> Any:
    fast = _outcome(decoder.decode, raw, "after")
    checked = _outcome(decoder._decode_checked, raw, "after")
    assert fast == checked
    return fast


def test_a_plain_row_takes_the_fast_path_and_decodes() -> None:
    out, unchanged = ROW.decode(dict(BASE), "after")
    assert unchanged is None and list(out) == list(BASE)
    assert out == ROW._decode_checked(dict(BASE), "after")[0]
    assert ROW._fast(dict(BASE)) is not None


EDGES: list[tuple[str, Any]] = [
    ("id", None),
    ("id", "1"),
    ("id", True),
    ("name", PLACEHOLDER),
    ("name", [PLACEHOLDER]),
    ("price", PLACEHOLDER_B64),
    ("price", ""),
    ("price", "not base64!"),
    ("at_us", 10**20),
    ("at_us", -(10**20)),
    ("at_ms", 253_402_300_800_000),
    ("at_ns", -1),
    ("day", 2_932_897),
    ("day", -719_163),
    ("day", 10**30),
    ("t_ms", -1),
    ("t_ms", 86_400_000),
    ("t_us", 86_399_999_999),
    ("t_us", 86_400_000_000),
    ("t_ns", -1),
    ("t_ns", 86_399_999_999_999),
    ("ref", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
    ("ref", "a0eebc999c0b4ef8bb6d6bb9bd380a11"),
    ("ref", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"),
    ("ref", "urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("ref", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g"),
    ("ref", "+0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("ref", "a0ee_c99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("codes", PLACEHOLDER_CODES),
    ("codes", [float(c) for c in PLACEHOLDER_CODES]),
    ("codes", [PLACEHOLDER]),
    ("ok", 1),
    ("ratio", 2),
    ("ratio", "1.5"),
]


@pytest.mark.parametrize(("column", "value"), EDGES)
def test_edge_values_agree_with_the_checked_path(column: str, value: Any) -> None:
    _agree(ROW, dict(BASE, **{column: value}))


def test_placeholders_are_marked_unchanged() -> None:
    raw = dict(BASE, name=PLACEHOLDER, codes=PLACEHOLDER_CODES)
    out, unchanged = _agree(ROW, raw)[1]
    assert out["name"] is UNCHANGED and out["codes"] is UNCHANGED
    assert unchanged == ["name", "codes"]


@pytest.mark.parametrize(
    "raw",
    [
        {k: v for k, v in BASE.items() if k != "ratio"},  # an optional column absent
        {k: v for k, v in BASE.items() if k != "id"},  # a required column absent
        dict(BASE, extra=1),
        dict(reversed(list(BASE.items()))),
        [],
    ],
)
def test_other_shapes_agree_with_the_checked_path(raw: Any) -> None:
    _agree(ROW, raw)


@given(
    st.fixed_dictionaries(
        {
            "at_us": st.integers(-(10**18), 10**18),
            "at_ms": st.integers(-(10**15), 10**15),
            "at_ns": st.integers(-(10**21), 10**21),
            "day": st.integers(-(10**7), 10**7),
            "t_ms": st.integers(-(10**8), 10**8),
            "t_us": st.integers(-(10**11), 10**11),
            "t_ns": st.integers(-(10**14), 10**14),
        }
    )
)
def test_inlined_time_decoders_agree_on_any_integer(values: dict[str, int]) -> None:
    _agree(ROW, dict(BASE, **values))


@pytest.mark.parametrize(
    "value",
    [
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "a0eebc999c0b4ef8bb6d6bb9bd380a11",
        "a0-eebc999c0b4ef8bb6d6bb9bd380a11",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "\u0663" * 32,
        "x" * 32,
        "",
    ],
)
def test_uuid_is_exactly_uuid_uuid(value: str) -> None:
    try:
        expected: Any = uuid.UUID(value)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(ParseError):
            decode_uuid(value)
    else:
        got = decode_uuid(value)
        assert got == expected and got.is_safe == expected.is_safe and str(got) == str(expected)


@pytest.mark.parametrize("value", ["BOI=", "/w==", "gA==", "", "AA", "!!!!", 5, None])
def test_decimal_decoder_is_decode_decimal(value: Any) -> None:
    assert _outcome(decimal_decoder(2), value, "p") == _outcome(decode_decimal, value, 2, "p")


@pytest.mark.parametrize(
    "raw",
    [
        {"a": 1, "b": "x"},
        {"a": PLACEHOLDER, "b": [PLACEHOLDER], "c": PLACEHOLDER_CODES, "d": PLACEHOLDER_B64},
        {"a": [float(c) for c in PLACEHOLDER_CODES]},
        {"a": {"nested": PLACEHOLDER}},
    ],
)
def test_schemaless_rows_mark_exactly_the_placeholders(raw: dict[str, Any]) -> None:
    row, unchanged = passthrough_row(raw, "after")
    expected = [k for k, v in raw.items() if v in (PLACEHOLDER, PLACEHOLDER_B64)]
    expected += [
        k for k, v in raw.items() if type(v) is list and v in ([PLACEHOLDER], PLACEHOLDER_CODES)
    ]
    assert sorted(unchanged or []) == sorted(expected)
    assert all(row[k] is UNCHANGED for k in expected)
    assert {k: v for k, v in row.items() if k not in expected} == {
        k: v for k, v in raw.items() if k not in expected
    }
