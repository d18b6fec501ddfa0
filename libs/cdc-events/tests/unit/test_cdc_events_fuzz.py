"""Fuzz: random and mutated records raise ParseError or parse; nothing else ever escapes, and
``parse_view`` gives the same answer as ``parse_record``."""

from __future__ import annotations

import random
from typing import Any

import orjson
from cdc_events import ChangeEvent, ChangeView, ColumnTypes, DecimalColumn, ParseError, Parser
from cdc_events.testing import golden_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

RECORDS = list(golden_records().values())
PARSERS = [
    Parser(),
    Parser(
        column_types=ColumnTypes(
            {"public.products": {"price": DecimalColumn(2), "updated_at": "timestamp"}}
        )
    ),
    Parser(max_bytes=4096),
]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "__debezium_unavailable_value",
            "AA==",
            "c",
            "u",
            "d",
            "BEGIN",
            "END",
            "1970-01-01T00:00:00Z",
            "2024-01-02T03:04:05Z",
        ]
    ),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def parse_only_parse_error(
    record: Any, key: bytes | None, value: bytes | None, topic: str | None = None
) -> None:
    for parser in PARSERS:
        message = ""
        result: Any
        try:
            result = parser.parse_record(topic or record.topic, 0, 0, key, value)
        except ParseError as exc:
            message = exc.message
            result = exc.code
        # The safety net in parse_record would hide a bug: it must never be the one raising.
        assert "unexpected record structure" not in message, message
        # parse_view agrees: the same record (a change as its view) or the same error code.
        try:
            view = parser.parse_view(topic or record.topic, 0, 0, key, value)
        except ParseError as exc:
            view = exc.code
        assert view == (ChangeView.of(result) if isinstance(result, ChangeEvent) else result)


def _mutate(doc: Any, rnd: random.Random, value: Any) -> Any:
    """Replace a random node of the JSON tree with ``value`` (or delete a key)."""
    if not isinstance(doc, (dict, list)) or not doc or rnd.random() < 0.2:
        return value
    if isinstance(doc, dict):
        k = rnd.choice(list(doc))
        if rnd.random() < 0.15:
            doc.pop(k)
        else:
            doc[k] = _mutate(doc[k], rnd, value)
    else:
        i = rnd.randrange(len(doc))
        doc[i] = _mutate(doc[i], rnd, value)
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(RECORDS) - 1), seed=st.integers(0, 2**32), value=json_value)
def test_mutated_golden_records(index: int, seed: int, value: Any) -> None:
    record = RECORDS[index]
    rnd = random.Random(seed)
    doc = record.json()
    key_doc = None if record.key is None else orjson.loads(record.key)
    if rnd.random() < 0.3 and key_doc is not None:
        key_doc = _mutate(key_doc, rnd, value)
    else:
        doc = _mutate(doc, rnd, value)
    key = None if key_doc is None else orjson.dumps(key_doc)
    parse_only_parse_error(record, key, orjson.dumps(doc))


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(RECORDS) - 1), data=st.data())
def test_byte_level_damage(index: int, data: st.DataObject) -> None:
    record = RECORDS[index]
    raw = bytearray(record.value or b"{}")
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        choice = data.draw(st.integers(0, 2))
        if choice == 0:
            raw[pos] = data.draw(st.integers(0, 255))
        elif choice == 1:
            del raw[pos : pos + data.draw(st.integers(1, 50))]
        else:
            raw[pos:pos] = data.draw(st.binary(max_size=8))
        if not raw:
            raw = bytearray(b"x")
    parse_only_parse_error(record, record.key, bytes(raw))


@settings(max_examples=300, deadline=None)
@given(
    key=st.one_of(st.none(), st.binary(max_size=64)),
    value=st.one_of(st.none(), st.binary(max_size=256)),
    topic=st.sampled_from(
        [
            "dbserver1.public.products",
            "dbserver1.transaction",
            "__debezium-heartbeat.dbserver1",
            "dbserver1",
            "x",
        ]
    ),
)
def test_random_bytes(key: bytes | None, value: bytes | None, topic: str) -> None:
    parse_only_parse_error(RECORDS[0], key, value, topic)


@settings(max_examples=300, deadline=None)
@given(
    doc=json_value,
    topic=st.sampled_from(
        ["dbserver1.public.products", "dbserver1.transaction", "__debezium-heartbeat.dbserver1"]
    ),
)
def test_random_json(doc: Any, topic: str) -> None:
    parse_only_parse_error(RECORDS[0], b'{"id":1}', orjson.dumps(doc), topic)
    parse_only_parse_error(
        RECORDS[0], b'{"id":1}', orjson.dumps({"schema": doc, "payload": doc}), topic
    )
