"""Fuzz: random and mutated records raise ParseError or parse; nothing else ever escapes, the
last-line safety net (``invalid_value``) is never the one raising, and ``parse_view`` gives the
same answer as ``parse_record`` (and ``source_version`` one fixed-width version of a change
either way). Mutations include out-of-range values: timestamps in UTC outside years 1-9999,
integers at the ends of 64 bits, decimals with absurd scales or exponents, text integers
``int()`` refuses, malformed PostgreSQL ``source.sequence`` texts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from cdc_events import (
    ChangeEvent,
    ChangeView,
    ColumnTypes,
    DecimalColumn,
    ParseError,
    Parser,
    parse_user_activity,
    source_version,
    sweep_version,
)
from cdc_events.testing import golden_records, make_user_activity
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

# Values at or past the end of some range: of datetime in UTC, of 64-bit integers, of decimal
# scales and exponents, of what int() reads, of a time of day.
EXTREMES: list[Any] = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59.999999999-00:01",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "24:00:00Z",
    "+10000-01-01T00:00:00Z",
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    253_402_300_800_000,
    -62_135_596_800_001,
    86_400_000_000,
    2_932_897,
    -719_163,
    1e308,
    -1e308,
    "1E+999999999",
    "1E-999999999999999999999",
    "0E+99999",
    "--5",
    "\u00b2",
    "9" * 5000,
    "f" + "/" * 2399,  # 1800 bytes of two's complement: over 4300 digits
    {"scale": 2**63 - 1, "value": "AQ=="},
    {"scale": -(2**63), "value": "AQ=="},
    {"scale": 16_384, "value": "AQ=="},
    {"scale": 0, "value": "f" + "/" * 2399},
]
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from(EXTREMES),
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
        assert result != "invalid_value", message
        # parse_view agrees: the same record (a change as its view) or the same error code.
        try:
            view = parser.parse_view(topic or record.topic, 0, 0, key, value)
        except ParseError as exc:
            view = exc.code
        assert view == (ChangeView.of(result) if isinstance(result, ChangeEvent) else result)
        if isinstance(result, ChangeEvent):
            # Every change that parses has a version, the same from both entry points.
            version = source_version(result)
            assert source_version(view) == version
            assert len(version) == {"q": 62, "n": 62, "t": 61}[version[0]], version
            # A table's last snapshot read also gives its sweep: same form, just below it.
            sweep = sweep_version(result)
            assert sweep == sweep_version(view)
            if sweep is not None:
                assert len(sweep) == 62 and sweep[0] == version[0] and sweep < version


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


def _rows(record: Any) -> list[str]:
    """The sides (``before``/``after``) of a golden record that hold a row."""
    doc = record.json()
    payload = doc.get("payload", doc) if isinstance(doc, dict) else None
    if not isinstance(payload, dict):
        return []
    return [side for side in ("before", "after") if isinstance(payload.get(side), dict)]


ROWS = [(record, side) for record in RECORDS for side in _rows(record)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, len(ROWS) - 1),
    data=st.data(),
    value=st.one_of(st.sampled_from(EXTREMES), st.integers(-(2**63), 2**64 - 1)),
)
def test_extreme_values_in_row_columns(index: int, data: st.DataObject, value: Any) -> None:
    """A column of a golden row (where the logical types are) replaced by an extreme value."""
    record, side = ROWS[index]
    doc = record.json()
    row = doc.get("payload", doc)[side]
    row[data.draw(st.sampled_from(sorted(row)))] = value
    parse_only_parse_error(record, record.key, orjson.dumps(doc))


def test_every_extreme_value_in_every_column_and_ts_ms() -> None:
    """The sweep behind the random test above: each extreme value in each column of each golden
    row, and in every ``ts_ms`` (payload and source block) of every golden record."""
    for record, side in ROWS:
        columns = sorted(record.json().get("payload", record.json())[side])
        for column in columns:
            for value in EXTREMES:
                doc = record.json()
                doc.get("payload", doc)[side][column] = value
                parse_only_parse_error(record, record.key, orjson.dumps(doc))
    for record in RECORDS:
        for has_ts_ms in _ts_ms_blocks(record):
            for value in EXTREMES:
                doc = record.json()
                has_ts_ms(doc.get("payload", doc))["ts_ms"] = value
                parse_only_parse_error(record, record.key, orjson.dumps(doc))


def _ts_ms_blocks(record: Any) -> list[Any]:
    """Getters of the objects holding a ``ts_ms`` in a record's payload: the payload itself
    (envelopes, heartbeats, transaction boundaries, schema changes) and its ``source`` block."""
    doc = record.json()
    payload = doc.get("payload", doc) if isinstance(doc, dict) else None
    if not isinstance(payload, dict):
        return []
    getters: list[Any] = []
    if "ts_ms" in payload:
        getters.append(lambda p: p)
    if isinstance(payload.get("source"), dict):
        getters.append(lambda p: p["source"])
    return getters


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(
        ["event_id", "user_id", "event_type", "timestamp", "amount", "duration", "metadata"]
    ),
    value=st.one_of(json_value, st.sampled_from(EXTREMES)),
    event_type=st.sampled_from(["click", "view", "add_to_cart", "purchase"]),
)
def test_mutated_user_activity(field: str, value: Any, event_type: str) -> None:
    """One field of a user-activity event replaced: ParseError (never the safety net's) or an
    event."""
    doc = orjson.loads(make_user_activity(event_type, amount="12.50"))
    doc[field] = value
    code = message = ""
    try:
        parse_user_activity(orjson.dumps(doc))
    except ParseError as exc:
        code, message = exc.code, exc.message
    assert code != "invalid_value", message


@settings(max_examples=300, deadline=None)
@given(
    moment=st.one_of(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 2)),
        st.datetimes(min_value=datetime(9999, 12, 30), max_value=datetime(9999, 12, 31, 23, 59)),
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
    ),
    offset_minutes=st.integers(-(24 * 60 - 1), 24 * 60 - 1),
)
def test_user_activity_timestamps_with_any_offset(moment: datetime, offset_minutes: int) -> None:
    """Every ISO-8601 timestamp with an offset: the moment in UTC if that falls in years
    1-9999, else ``invalid_event``."""
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = f"{moment.year:04d}{moment:-%m-%dT%H:%M:%S.%f}{sign}{hours:02d}:{minutes:02d}"
    expected: Any
    try:
        expected = (moment - timedelta(minutes=offset_minutes)).replace(tzinfo=UTC)
    except OverflowError:
        expected = "invalid_event"
    try:
        outcome: Any = parse_user_activity(make_user_activity(timestamp=text)).timestamp
    except ParseError as exc:
        outcome = exc.code
    assert outcome == expected


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


# PostgreSQL source.sequence texts: Jackson's layout, other layouts, and malformed ones.
SEQUENCES: list[Any] = [
    '["28330144","28330144"]',
    '[null,"28329528"]',
    "[null,null]",
    '[ "1" , "2" ]',
    '["18446744073709551615","1"]',
    '["18446744073709551616","1"]',
    '["-9223372036854775808","1"]',
    '["-9223372036854775809","1"]',
    '["9999999999999999999","1"]',
    '["99999999999999999999","1"]',
    '["' + "9" * 5000 + '","1"]',
    '["\u00b2","1"]',
    '["1_0","1"]',
    '["--5","1"]',
    '["1"]',
    '["1","2","3"]',
    "[1,2]",
    "[]",
    "{}",
    '"1"',
    "",
    "[",
    r'["\ud800","1"]',  # JSON escaping a lone surrogate
    5,
    ["1", "2"],
    None,
]
PG_CHANGES = [
    r
    for r in RECORDS
    if isinstance(p := (d := r.json() or {}).get("payload", d), dict)
    and isinstance(p.get("source"), dict)
    and p["source"].get("connector") == "postgresql"
]
sequence_value = st.one_of(
    st.sampled_from(SEQUENCES),
    st.text(max_size=30),
    json_value,
    st.lists(
        st.one_of(
            st.none(), st.integers(-(2**65), 2**65).map(str), st.text(max_size=22), json_leaf
        ),
        max_size=3,
    ).map(lambda items: orjson.dumps(items).decode()),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(PG_CHANGES) - 1), sequence=sequence_value)
def test_mutated_sequences(index: int, sequence: Any) -> None:
    record = PG_CHANGES[index]
    doc = record.json()
    doc.get("payload", doc)["source"]["sequence"] = sequence
    parse_only_parse_error(record, record.key, orjson.dumps(doc))


def test_every_sequence_in_every_postgresql_change() -> None:
    assert len(PG_CHANGES) >= 30
    for record in PG_CHANGES:
        for sequence in SEQUENCES:
            doc = record.json()
            doc.get("payload", doc)["source"]["sequence"] = sequence
            parse_only_parse_error(record, record.key, orjson.dumps(doc))
