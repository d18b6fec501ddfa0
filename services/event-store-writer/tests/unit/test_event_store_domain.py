from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from cdc_events import ParseError
from cdc_events.testing import KafkaRecord, golden, make_change, make_tombstone, make_transaction
from consumer_runtime import InMemoryMessage
from event_store_writer import CHANGE_COLUMNS, ChangeRow, EventDecoder, TransactionRow, UserEventRow
from event_store_writer.domain import (
    month_bounds_ms,
    month_of_ms,
    months_ahead,
    orphan_tombstone_id,
    partition_name,
    pg_text_array,
    tombstone_id_after,
    with_resolved_delete,
)


def _msg(
    topic: str,
    key: bytes | None,
    value: bytes | None,
    offset: int = 0,
    partition: int = 0,
    ts: int = 0,
    headers: tuple[tuple[str, bytes | None], ...] = (),
) -> InMemoryMessage:
    return InMemoryMessage(topic, partition, offset, key, value, headers, ts)


def _col(row: ChangeRow, name: str) -> object:
    return row.values[CHANGE_COLUMNS.index(name)]


def _change(decode: EventDecoder, record: KafkaRecord, offset: int) -> ChangeRow:
    row = decode(_msg(record.topic, record.key, record.value, offset=offset))
    assert isinstance(row, ChangeRow)
    return row


def test_a_change_becomes_a_row_in_normalised_form() -> None:
    rec = make_change(
        "u",
        before={"id": 7, "price": Decimal("1.50")},
        after={"id": 7, "price": Decimal("12.50")},
        lsn=1234,
        tx_id=99,
        with_schema=True,
    )
    row = EventDecoder()(_msg(rec.topic, rec.key, rec.value, offset=5))
    assert isinstance(row, ChangeRow)
    assert len(row.values) == len(CHANGE_COLUMNS)
    assert row.event_id == rec.parse().event_id  # type: ignore[union-attr]
    assert orjson.loads(str(_col(row, "after"))) == {"id": 7, "price": "12.50"}
    assert orjson.loads(str(_col(row, "key"))) == {"id": 7}
    assert _col(row, "op") == "u"
    assert _col(row, "position") == 1234
    assert _col(row, "tx_id") == "99"
    assert _col(row, "kafka_offset") == 5
    assert _col(row, "snapshot") is False
    assert row.source_ts_ms == 1_704_164_645_000


def test_toast_unchanged_columns_are_listed_never_stored_as_the_placeholder() -> None:
    rec = golden("pg-schema-products-u")
    row = EventDecoder()(_msg(rec.topic, rec.key, rec.value))
    assert isinstance(row, ChangeRow)
    assert _col(row, "unchanged_columns") == '{"description","tags","sizes"}'
    assert b"__debezium_unavailable_value" not in orjson.dumps(row.values)
    assert "description" not in orjson.loads(str(_col(row, "after")))


def test_heartbeats_and_schema_changes_are_skipped() -> None:
    decode = EventDecoder()
    for name in ("pg-schema-heartbeat", "mysql-heartbeat", "mysql-schema-change"):
        rec = golden(name)
        assert decode(_msg(rec.topic, rec.key, rec.value)) is None, name


def test_transaction_boundaries_go_to_transactions_or_are_skipped() -> None:
    rec = make_transaction("END", "555:100", collections={"public.orders": 2})
    row = EventDecoder()(_msg(rec.topic, rec.key, rec.value))
    assert isinstance(row, TransactionRow)
    assert (row.tx_id, row.status, row.event_count) == ("555", "END", 2)
    assert orjson.loads(row.data_collections or "") == {"public.orders": 2}
    assert EventDecoder(store_transactions=False)(_msg(rec.topic, rec.key, rec.value)) is None


def test_a_tombstone_takes_its_id_and_time_from_the_delete_before_it() -> None:
    decode = EventDecoder()
    delete = make_change("d", before={"id": 3}, lsn=500)
    tomb = make_tombstone({"id": 3})
    assert tomb.key == delete.key
    d = decode(_msg(delete.topic, delete.key, delete.value, offset=10))
    t = decode(_msg(tomb.topic, tomb.key, tomb.value, offset=11, ts=99))
    assert isinstance(d, ChangeRow) and isinstance(t, ChangeRow)
    assert t.event_id == tombstone_id_after(d.event_id)
    assert t.event_time_ms == d.event_time_ms
    assert _col(t, "kind") == "tombstone"
    assert _col(t, "position") == 500
    assert (
        _col(t, "version")
        == _col(d, "version")
        == "q" + ("500".zfill(20) + "2") + ("500".zfill(20) * 2)
    )
    assert not t.needs_delete
    # A re-emit of the pair later in the partition gets the same ids (absorbed by the store).
    d2 = decode(_msg(delete.topic, delete.key, delete.value, offset=20))
    t2 = decode(_msg(tomb.topic, tomb.key, tomb.value, offset=21))
    assert (d2.event_id, t2.event_id) == (d.event_id, t.event_id)  # type: ignore[union-attr]


def test_a_tombstone_without_a_known_delete_is_left_for_the_sink_to_resolve() -> None:
    tomb = make_tombstone({"id": 3})
    t = EventDecoder()(_msg(tomb.topic, tomb.key, tomb.value, offset=11, ts=1_700_000_000_000))
    assert isinstance(t, ChangeRow)
    assert t.needs_delete
    assert t.event_time_ms == 1_700_000_000_000
    assert _col(t, "version") is None
    resolved = with_resolved_delete(t, "abc", 1_600_000_000_000, 42, "q1")
    assert resolved.event_id == tombstone_id_after("abc")
    assert (resolved.event_time_ms, _col(resolved, "position")) == (1_600_000_000_000, 42)
    assert _col(resolved, "version") == "q1"
    assert not resolved.needs_delete
    orphan = with_resolved_delete(t, None, None, None)
    assert orphan.event_id == orphan_tombstone_id(tomb.topic, 0, 11)
    assert _col(orphan, "version") is None


def test_each_change_carries_its_version_and_a_tables_last_read_its_sweep() -> None:
    # The snapshot reads order 7 at its point (LSN 5000; its last read of orders); the first
    # transaction streamed after it has a lower LSN (it was open across the point) and no
    # commit key: the decoder's Versions gives it the snapshot's point, so it sorts after.
    decode = EventDecoder()
    first = make_change("r", table="orders", after={"id": 6}, lsn=5000, snapshot="first")
    last = make_change("r", table="orders", after={"id": 7}, lsn=5000, snapshot="last")
    update = make_change("u", table="orders", after={"id": 7}, lsn=4800, sequence=(None, 4800))
    f, r, u = (_change(decode, rec, i) for i, rec in enumerate((first, last, update)))
    assert str(_col(r, "version")) < str(_col(u, "version"))
    assert _col(u, "position") == 4800 and _col(r, "position") == 5000
    assert (f.sweep, u.sweep) == (None, None)
    assert r.sweep == "q" + "5000".zfill(20) + "0" + "0" * 40
    assert r.sweep < str(_col(f, "version"))
    # A fresh decoder does not know the snapshot's point: the update keys on its own LSN.
    alone = _change(EventDecoder(), update, 2)
    assert str(_col(alone, "version")) < str(_col(r, "version"))


def test_user_activity_becomes_a_user_event_row() -> None:
    value = orjson.dumps(
        {
            "event_id": "e-1",
            "user_id": 17,
            "event_type": "purchase",
            "timestamp": "2024-05-01T10:00:00+02:00",
            "amount": 19.99,
            "duration_seconds": 3.5,
            "metadata": {"page": "/cart"},
        }
    )
    row = EventDecoder()(_msg("user-events", b"17", value, offset=3))
    assert isinstance(row, UserEventRow)
    assert row.values == (
        "e-1",
        "17",
        "purchase",
        "2024-05-01T08:00:00+00:00",
        "19.99",
        3.5,
        '{"page":"/cart"}',
        "user-events",
        0,
        3,
    )
    assert row.source_ts_ms == 1_714_550_400_000


@pytest.mark.parametrize(
    ("topic", "value", "code"),
    [
        ("user-events", b"{}", "missing_field"),
        ("user-events", b"[1]", "not_object"),
        ("dbserver1.public.orders", b"{not json", "not_json"),
        ("dbserver1.public.orders", b'{"op": "x", "source": {}}', "unknown_op"),
    ],
)
def test_malformed_records_raise_parse_errors(topic: str, value: bytes, code: str) -> None:
    with pytest.raises(ParseError) as info:
        EventDecoder()(_msg(topic, b'{"id": 1}', value))
    assert info.value.code == code


def test_oversized_records_are_rejected_by_the_configured_limit() -> None:
    from cdc_events import Parser

    decode = EventDecoder(Parser(max_bytes=2048))
    big = orjson.dumps(
        {
            "event_id": "e",
            "user_id": "u",
            "event_type": "view",
            "timestamp": "2024-01-01T00:00:00Z",
            "metadata": {"x": "y" * 4096},
        }
    )
    with pytest.raises(ParseError) as info:
        decode(_msg("user-events", None, big))
    assert info.value.code == "too_large"


def test_text_array_literal_escapes_quotes_and_backslashes() -> None:
    assert pg_text_array(["a", 'b"c', "d\\e", "x,y"]) == '{"a","b\\"c","d\\\\e","x,y"}'


def test_months() -> None:
    lo, hi = month_bounds_ms(2024, 12)
    assert datetime.fromtimestamp(lo / 1000, UTC) == datetime(2024, 12, 1, tzinfo=UTC)
    assert datetime.fromtimestamp(hi / 1000, UTC) == datetime(2025, 1, 1, tzinfo=UTC)
    assert month_of_ms(lo) == (2024, 12)
    assert month_of_ms(hi - 1) == (2024, 12)
    assert month_of_ms(hi) == (2025, 1)
    assert months_ahead(2024, 11, 3) == [(2024, 11), (2024, 12), (2025, 1), (2025, 2)]
    assert partition_name("cdc_events", 2025, 3) == "cdc_events_y2025m03"


def test_the_row_json_equals_the_librarys_normalised_form_on_every_golden_record() -> None:
    from cdc_events import ChangeEvent
    from cdc_events.testing import golden_records

    checked = 0
    for name, rec in golden_records().items():
        event = rec.parse()
        if not isinstance(event, ChangeEvent):
            continue
        row = EventDecoder()(
            _msg(rec.topic, rec.key, rec.value, offset=rec.offset, headers=rec.headers)
        )
        assert isinstance(row, ChangeRow)
        d = event.to_dict()
        for column in ("key", "before", "after"):
            stored = _col(row, column)
            assert (None if stored is None else orjson.loads(str(stored))) == d[column], name
        checked += 1
    assert checked > 30


def test_zoned_and_naive_values_take_the_normalised_form() -> None:
    from datetime import time, timedelta, timezone

    after = {
        "id": 1,
        "at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "micro": datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC),
        "naive": datetime(2024, 1, 2, 3, 4, 5),
        "t": time(3, 4, 5),
        "raw": b"\x00\xff",
        "price": Decimal("0.10"),
    }
    rec = make_change("c", after=after, with_schema=True)
    row = EventDecoder()(_msg(rec.topic, rec.key, rec.value))
    assert isinstance(row, ChangeRow)
    assert orjson.loads(str(_col(row, "after"))) == rec.parse().to_dict()["after"]  # type: ignore[union-attr]
    assert orjson.loads(str(_col(row, "after")))["at"] == "2024-01-02T03:04:05Z"
    assert orjson.loads(str(_col(row, "after")))["price"] == "0.10"
    assert timezone(timedelta(hours=1))  # zoned values arrive in UTC from the parser


def _generic_line(row: ChangeRow) -> str:
    """``encode_row`` of the row's values in the COPY's column order."""
    from event_store_writer._prepared import LINE_COLUMNS
    from sink_kit.pgcopy import encode_row

    assert sorted(LINE_COLUMNS) == sorted(CHANGE_COLUMNS)
    return encode_row([row.values[CHANGE_COLUMNS.index(c)] for c in LINE_COLUMNS])


def test_the_unrolled_copy_line_equals_the_generic_encoding() -> None:
    from cdc_events.testing import golden_records
    from event_store_writer._prepared import change_line

    decode = EventDecoder()
    rows = []
    for rec in golden_records().values():
        try:
            row = decode(
                _msg(rec.topic, rec.key, rec.value, offset=rec.offset, headers=rec.headers)
            )
        except ParseError:
            continue
        if isinstance(row, ChangeRow):
            rows.append(row)
    tomb = make_tombstone({"id": 3})
    rows.append(decode(_msg(tomb.topic, tomb.key, tomb.value, offset=99, ts=5)))  # type: ignore[arg-type]
    assert len(rows) > 30
    for row in rows:
        assert change_line(row.values) == _generic_line(row)


@pytest.mark.parametrize("kind", ["change", "delete", "tombstone"])
def test_the_copy_line_escapes_what_copy_would_misread(kind: str) -> None:
    """Backslashes, tabs, newlines and a literal ``\\N`` in values and names: escaped the way
    the generic encoder does it, and read back by splitting on tabs to the same values."""
    from event_store_writer._prepared import LINE_COLUMNS, change_line

    awkward = "tab\there\nnew line\r back\\slash \\N end"
    row_values = {"id": 5, "note": awkward, awkward: "a key with all of it"}
    decode = EventDecoder()
    rec = make_change(
        "d" if kind != "change" else "u",
        before=row_values,
        after=None if kind != "change" else row_values,
        table="odd\\table\tname",
        schema="we\nird",
        key={"id": 5, "k": awkward},
    )
    row = decode(_msg(rec.topic + "\\x", rec.key, rec.value, offset=7))
    if kind == "tombstone":
        tomb = make_tombstone({"id": 5, "k": awkward})
        row = decode(_msg(rec.topic + "\\x", tomb.key, tomb.value, offset=8, ts=9))
    assert isinstance(row, ChangeRow)
    line = change_line(row.values)
    assert line == _generic_line(row)
    assert line.endswith("\n") and line.count("\n") == 1
    fields = line[:-1].split("\t")
    assert len(fields) == len(LINE_COLUMNS)
    by_name = dict(zip(LINE_COLUMNS, fields, strict=True))
    unescape = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}

    def copy_read(text: str) -> str:
        out, i = [], 0
        while i < len(text):
            pair = text[i : i + 2]
            if pair in unescape:
                out.append(unescape[pair])
                i += 2
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    assert copy_read(by_name["table_name"]) == _col(row, "table_name")
    assert copy_read(by_name["topic"]) == rec.topic + "\\x"
    assert orjson.loads(copy_read(by_name["key"])) == {"id": 5, "k": awkward}
    if kind == "change":
        assert orjson.loads(copy_read(by_name["after"])) == row_values


def test_key_hash_keeps_its_documented_formula() -> None:
    """Stored rows carry this hash and the history look-ups recompute it: the formula (blake2b
    of "table US key", 8 bytes, signed big-endian) must never drift, for any table."""
    import hashlib

    from event_store_writer.domain import key_hash

    cases = [("products", '{"id":1}'), (None, '{"id":1}'), ("café", '{"k":"ü"}')] * 2
    cases += [(f"t{i}", '{"id":2}') for i in range(50)]
    for table, key in cases:
        text = f"{table or ''}\x1f{key}".encode()
        expected = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big", signed=True)
        assert key_hash(table, key) == expected
    assert key_hash("products", None) is None
    assert key_hash("products", '{"id":1}') != key_hash("orders", '{"id":1}')


def test_a_key_only_delete_stores_only_the_key_columns_of_before() -> None:
    """A delete under the default replica identity: Debezium fills the non-key columns with
    placeholders (empty text, zero decimal, the epoch); the store keeps only the real ones, in
    the library's form (``ChangeView.normalised_rows``, as ``ChangeEvent.to_dict``)."""
    before = {"id": 7, "name": "", "price": "AA==", "updated_at": "1970-01-01T00:00:00Z"}
    rec = make_change("d", before=before, key={"id": 7})
    row = EventDecoder()(_msg(rec.topic, rec.key, rec.value, offset=3))
    assert isinstance(row, ChangeRow)
    assert orjson.loads(str(_col(row, "before"))) == {"id": 7}
    assert orjson.loads(str(_col(row, "before"))) == rec.parse().to_dict()["before"]  # type: ignore[union-attr]
    assert _col(row, "after") is None
