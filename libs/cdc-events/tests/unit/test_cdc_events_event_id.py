"""event_id: equal for a redelivery and a re-emit, different for different changes."""

from __future__ import annotations

import hashlib

import orjson
from cdc_events import ChangeEvent, Parser, parse_record
from cdc_events.testing import KafkaRecord, golden, golden_records, make_change


def event_of(record: KafkaRecord, offset: int = 0, value: bytes | None = None) -> ChangeEvent:
    event = parse_record(
        record.topic,
        record.partition,
        offset,
        record.key,
        value if value is not None else record.value,
    )
    assert isinstance(event, ChangeEvent)
    return event


def test_redelivery_at_another_offset_has_the_same_id() -> None:
    record = golden("pg-schema-products-u")
    assert event_of(record, 2).event_id == event_of(record, 9_999).event_id


def test_reemit_with_new_envelope_time_has_the_same_id() -> None:
    record = golden("pg-schema-products-u")
    doc = record.json()
    doc["payload"]["ts_ms"] += 60_000  # Debezium processed it again a minute later
    doc["payload"]["ts_us"] += 60_000_000
    reemitted = event_of(record, 50, orjson.dumps(doc))
    assert reemitted.event_id == event_of(record).event_id


def test_same_id_with_and_without_converter_schemas() -> None:
    # Different records (different databases) but the same formula: the id depends on the
    # payload only, not on the converter.
    record = golden("pg-schema-products-u")
    bare = orjson.dumps(record.json()["payload"])
    key = orjson.dumps(orjson.loads(record.key or b"")["payload"])
    event = parse_record(record.topic, 0, 0, key, bare)
    assert isinstance(event, ChangeEvent)
    assert event.event_id == event_of(record).event_id


def test_ids_of_distinct_changes_differ() -> None:
    ids = [e.event_id for r in golden_records().values() if isinstance(e := r.parse(), ChangeEvent)]
    assert len(ids) == len(set(ids))


def test_snapshot_reads_share_a_position_and_differ_by_key() -> None:
    a = make_change("r", after={"id": 1}, snapshot="true").parse()
    b = make_change("r", after={"id": 2}, snapshot="true").parse()
    assert isinstance(a, ChangeEvent) and isinstance(b, ChangeEvent)
    assert a.source.lsn == b.source.lsn
    assert a.event_id != b.event_id


def test_position_and_op_are_part_of_the_id() -> None:
    base = make_change("u", after={"id": 1, "n": 1}).parse()
    other_lsn = make_change("u", after={"id": 1, "n": 1}, lsn=1).parse()
    other_op = make_change("c", after={"id": 1, "n": 1}).parse()
    mysql_row = make_change("u", connector="mysql", after={"id": 1}, binlog=("f", 1, 0)).parse()
    mysql_row2 = make_change("u", connector="mysql", after={"id": 1}, binlog=("f", 1, 1)).parse()
    ids = {
        e.event_id
        for e in (base, other_lsn, other_op, mysql_row, mysql_row2)
        if isinstance(e, ChangeEvent)
    }
    assert len(ids) == 5


def test_formula_is_the_documented_one() -> None:
    event = event_of(golden("pg-schema-products-u"))
    src = event.source
    text = "\x1f".join(
        [
            "v1",
            "postgresql",
            src.db or "",
            "public",
            "products",
            "u",
            f"pg:{src.lsn}:{src.tx_id}",
            "",
        ]
    )
    expected = hashlib.blake2b(text.encode() + b'{"id":2}', digest_size=16).hexdigest()
    assert event.event_id == expected


def test_cached_and_uncached_paths_agree() -> None:
    record = golden("pg-schema-products-c")
    warm = Parser()
    first = record.parse(warm)
    second = record.parse(warm)  # schema cache hit
    assert first == second
    cold = Parser().parse_record(record.topic, 0, 77, record.key, record.value)
    assert isinstance(cold, ChangeEvent) and isinstance(first, ChangeEvent)
    assert (cold.event_id, cold.after) == (first.event_id, first.after)
