"""``source_version``: the byte order of the versions is the order of the changes of one row,
from the source's position (never the Kafka offset), the same for both entry points.

The trap the PostgreSQL rule exists for: a transaction open across the snapshot's consistent
point has change LSNs below the snapshot's LSN and commits after it, and the first transaction
streamed after the snapshot has no commit key (``sequence`` ``[null, "<lsn>"]``). Ordered by
the change LSN alone, its change looks older than the snapshot read of the same row.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from cdc_events import (
    ChangeEvent,
    ChangeView,
    ParseError,
    Parser,
    Versions,
    source_version,
    sweep_version,
)
from cdc_events.testing import KafkaRecord, golden, make_change
from hypothesis import given
from hypothesis import strategies as st

U64_MAX = 2**64 - 1


def event_of(record: KafkaRecord, partition: int | None = None, offset: int | None = None) -> Any:
    event = Parser().parse_record(
        record.topic,
        record.partition if partition is None else partition,
        record.offset if offset is None else offset,
        record.key,
        record.value,
        list(record.headers) or None,
    )
    assert isinstance(event, ChangeEvent)
    return event


def view_of(record: KafkaRecord, partition: int | None = None, offset: int | None = None) -> Any:
    view = Parser().parse_view(
        record.topic,
        record.partition if partition is None else partition,
        record.offset if offset is None else offset,
        record.key,
        record.value,
        list(record.headers) or None,
    )
    assert type(view) is ChangeView
    return view


def version(record: KafkaRecord, partition: int | None = None, offset: int | None = None) -> str:
    """The version of ``record``; both entry points must give it."""
    from_event = source_version(event_of(record, partition, offset))
    assert source_version(view_of(record, partition, offset)) == from_event
    return from_event


def pg(snapshot: bool, commit: int, lsn: int, generation: int | None = None) -> str:
    """The PostgreSQL form: generation key, class (1 read, 2 streamed), commit key, LSN."""
    key = commit if generation is None else generation
    return f"q{key:020d}{1 if snapshot else 2}{commit:020d}{lsn:020d}"


# -- the golden records: every PostgreSQL and MySQL change, its commit LSN and its version ----

GOLDEN = {
    # name: (commit_lsn, version)
    "pg-schema-products-r": (
        None,
        "q0000000000002831577610000000000002831577600000000000028315776",
    ),
    "pg-schema-products-c": (
        None,
        "q0000000000002832916820000000000002832916800000000000028329168",
    ),
    "pg-schema-products-u": (
        28329728,
        "q0000000000002832972820000000000002832972800000000000028329784",
    ),
    "pg-schema-products-d": (
        28330320,
        "q0000000000002833032020000000000002833032000000000000028330320",
    ),
    "pg-schema-orders-r": (None, "q0000000000002831577610000000000002831577600000000000028315776"),
    "pg-schema-orders-c": (None, "q0000000000002832952820000000000002832952800000000000028329528"),
    "pg-schema-orders-u": (
        28330144,
        "q0000000000002833014420000000000002833014400000000000028330144",
    ),
    "pg-schema-orders-d": (
        28330440,
        "q0000000000002833044020000000000002833044000000000000028330440",
    ),
    "pg-schema-scratch-c": (
        28330584,
        "q0000000000002833058420000000000002833058400000000000028330584",
    ),
    "pg-schema-scratch-t": (
        28330856,
        "q0000000000002833085620000000000002833085600000000000028332304",
    ),
    "pg-schema-message": (
        28332560,
        "q0000000000002833256020000000000002833256000000000000028332632",
    ),
    "pg-noschema-products-r": (
        None,
        "q0000000000003260779210000000000003260779200000000000032607792",
    ),
    "pg-noschema-products-c": (
        None,
        "q0000000000003262112820000000000003262112800000000000032621128",
    ),
    "pg-noschema-products-u": (
        32621688,
        "q0000000000003262168820000000000003262168800000000000032621744",
    ),
    "pg-noschema-products-d": (
        32622280,
        "q0000000000003262228020000000000003262228000000000000032622280",
    ),
    "pg-noschema-orders-r": (
        None,
        "q0000000000003260779210000000000003260779200000000000032607792",
    ),
    "pg-noschema-orders-c": (
        None,
        "q0000000000003262148820000000000003262148800000000000032621488",
    ),
    "pg-noschema-orders-u": (
        32622104,
        "q0000000000003262210420000000000003262210400000000000032622104",
    ),
    "pg-noschema-orders-d": (
        32622400,
        "q0000000000003262240020000000000003262240000000000000032622400",
    ),
    "pg-noschema-scratch-c": (
        32622544,
        "q0000000000003262254420000000000003262254400000000000032622544",
    ),
    "pg-noschema-message": (
        32624520,
        "q0000000000003262452020000000000003262452000000000000032624592",
    ),
    "pg-string-products-r": (
        None,
        "q0000000000003689981610000000000003689981600000000000036899816",
    ),
    "pg-string-products-c": (
        None,
        "q0000000000003691312820000000000003691312800000000000036913128",
    ),
    "pg-string-products-u": (
        36913712,
        "q0000000000003691371220000000000003691371200000000000036913768",
    ),
    "pg-string-products-d": (
        36914304,
        "q0000000000003691430420000000000003691430400000000000036914304",
    ),
    "pg-double-products-r": (
        None,
        "q0000000000004119182410000000000004119182400000000000041191824",
    ),
    "pg-double-products-c": (
        None,
        "q0000000000004120513620000000000004120513600000000000041205136",
    ),
    "pg-double-products-u": (
        41205696,
        "q0000000000004120569620000000000004120569600000000000041205752",
    ),
    "pg-double-products-d": (
        41206312,
        "q0000000000004120631220000000000004120631200000000000041206312",
    ),
    "pg-connect-products-r": (
        None,
        "q0000000000004548383210000000000004548383200000000000045483832",
    ),
    "pg-connect-products-c": (
        None,
        "q0000000000004549714420000000000004549714400000000000045497144",
    ),
    "pg-connect-products-u": (
        45497704,
        "q0000000000004549770420000000000004549770400000000000045497760",
    ),
    "pg-connect-products-d": (
        45498296,
        "q0000000000004549829620000000000004549829600000000000045498296",
    ),
    "mysql-orders-r-legacy-snapshot": (
        None,
        "n0000000000000000000300000000000000000154100000000000000000000",
    ),
    "mysql-orders-c": (None, "n0000000000000000000300000000000000004015200000000000000000000"),
    "mysql-orders-u": (None, "n0000000000000000000300000000000000004420200000000000000000001"),
    "mysql-orders-d": (None, "n0000000000000000000300000000000000004815200000000000000000000"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_record_versions(name: str) -> None:
    commit_lsn, expected = GOLDEN[name]
    record = golden(name)
    event, view = event_of(record), view_of(record)
    assert event.source.commit_lsn == view.commit_lsn == commit_lsn
    assert event.to_dict()["commit_lsn"] == commit_lsn
    assert version(record) == expected
    assert len(expected) == 62


def test_golden_versions_follow_the_order_the_connector_emitted_them() -> None:
    """Per table of one capture: the snapshot read, then c, u, d as they were committed."""
    for prefix in (
        "pg-schema-products",
        "pg-schema-orders",
        "pg-noschema-products",
        "pg-noschema-orders",
        "pg-string-products",
        "pg-double-products",
        "pg-connect-products",
        "mysql-orders",
    ):
        first = "mysql-orders-r-legacy-snapshot" if prefix == "mysql-orders" else f"{prefix}-r"
        names = [first, f"{prefix}-c", f"{prefix}-u", f"{prefix}-d"]
        versions = [GOLDEN[n][1] for n in names]
        assert versions == sorted(versions), prefix
        assert len(set(versions)) == 4, prefix


def test_the_golden_snapshot_read_and_first_transaction_show_the_sequence_as_documented() -> None:
    # What the rule relies on: reads and the first streamed transaction have no commit LSN,
    # later transactions carry the previous one's.
    assert event_of(golden("pg-schema-orders-r")).source.commit_lsn is None
    assert event_of(golden("pg-schema-orders-c")).source.commit_lsn is None
    assert event_of(golden("pg-schema-orders-u")).source.commit_lsn == 28330144


# -- ordering -----------------------------------------------------------------------------------


def test_a_change_of_a_transaction_open_across_the_snapshot_point_is_newer_than_the_read() -> None:
    """The snapshot reads the row at its consistent point (LSN 5000). A transaction that had
    already written its change (LSN 4800) but committed after that point is the first one
    streamed: sequence ``[null, "4800"]``. Its change is newer than the read, although its LSN
    is lower (an order by LSN alone skips it): ``Versions``, having seen the read in the
    partition, gives it the snapshot's point as generation key."""
    read = make_change(
        "r", table="orders", after={"id": 7, "status": "new"}, lsn=5000, snapshot="last"
    )
    streamed = make_change(
        "u", table="orders", after={"id": 7, "status": "paid"}, lsn=4800, sequence=(None, 4800)
    )
    assert event_of(streamed).source.lsn < event_of(read).source.lsn  # the trap
    for parse in (event_of, view_of):
        versions = Versions()
        v_read, v_streamed = versions.of(parse(read)), versions.of(parse(streamed))
        assert v_streamed > v_read
        assert v_read == pg(True, 5000, 5000)
        assert v_streamed == pg(False, 4800, 4800, generation=5000)
    # Without the point (a consumer that did not see the read) the LSN is the key: the limit
    # ``Versions`` documents.
    assert version(streamed) == pg(False, 4800, 4800) < version(read)
    # In another partition the point is not known either: reads are per partition.
    versions = Versions()
    versions.of(event_of(read))
    assert versions.of(event_of(streamed, partition=1)) == pg(False, 4800, 4800)


def test_a_new_snapshot_is_newer_than_everything_streamed_before_it() -> None:
    """Debezium lost its offsets and snapshots again at 9000: the new read of a row replaces
    the changes streamed before (LSNs below 9000), whatever their class; the changes streamed
    after the new snapshot replace the read."""
    versions = Versions()
    old_read = versions.of(event_of(make_change("r", after={"id": 1}, lsn=5000, snapshot="true")))
    first = versions.of(
        event_of(make_change("u", after={"id": 1}, lsn=5100, sequence=(None, 5100)))
    )
    later = versions.of(
        event_of(make_change("u", after={"id": 1}, lsn=8000, sequence=(7900, 8000)))
    )
    new_read = versions.of(event_of(make_change("r", after={"id": 1}, lsn=9000, snapshot="last")))
    # The first transaction after the new snapshot, open across its point (LSN 8950).
    after = versions.of(
        event_of(make_change("u", after={"id": 1}, lsn=8950, sequence=(None, 8950)))
    )
    then = versions.of(event_of(make_change("u", after={"id": 1}, lsn=9300, sequence=(9200, 9300))))
    assert old_read < first < later < new_read < after < then
    # A dead-letter replay of the change before the new snapshot is still older than its read.
    replay = make_change("u", after={"id": 1}, lsn=8000, sequence=(7900, 8000))
    assert versions.of(event_of(replay, offset=999)) == later < new_read


def test_the_sweep_version_sits_between_two_generations() -> None:
    last = make_change("r", after={"id": 1}, lsn=9000, snapshot="last_in_data_collection")
    sweep = sweep_version(event_of(last))
    assert sweep == sweep_version(view_of(last)) == "q" + f"{9000:020d}" + "0" + "0" * 40
    assert len(sweep) == 62
    before = [
        make_change("r", after={"id": 2}, lsn=5000, snapshot="true"),
        make_change("u", after={"id": 2}, lsn=8990, sequence=(8980, 8990)),
        make_change("u", after={"id": 2}, lsn=8999, sequence=(None, 8999)),
    ]
    after = [
        make_change("r", after={"id": 2}, lsn=9000, snapshot="first"),
        make_change("u", after={"id": 2}, lsn=9100, sequence=(9050, 9100)),
    ]
    assert all(version(r) < sweep for r in before)
    assert all(version(r) > sweep for r in after)
    # The first transaction after it, open across the point, is above it once its partition's
    # reads were seen.
    versions = Versions()
    versions.of(event_of(last))
    open_across = make_change("u", after={"id": 3}, lsn=8999, sequence=(None, 8999))
    assert versions.of(event_of(open_across)) > sweep
    # Only the last read of a table carries it; MySQL's is the position's.
    for marker in ("true", "first", "first_in_data_collection", "false", "incremental"):
        assert (
            sweep_version(event_of(make_change("r", after={"id": 1}, lsn=1, snapshot=marker)))
            is None
        )
    assert sweep_version(event_of(make_change("r", after={"id": 1}, lsn=1, snapshot="last")))
    mysql = make_change(
        "r",
        connector="mysql",
        db="shop",
        after={"id": 1},
        binlog=("mysql-bin.000003", 154, 0),
        snapshot="last",
    )
    assert sweep_version(event_of(mysql)) == "n" + f"{3:020d}{154:020d}" + "0" + "0" * 20
    assert sweep_version(event_of(mysql)) < version(mysql)


def test_incremental_snapshot_reads_are_no_generation() -> None:
    versions = Versions()
    versions.of(event_of(make_change("r", after={"id": 1}, lsn=9000, snapshot="incremental")))
    first = make_change("u", after={"id": 1}, lsn=100, sequence=(None, 100))
    assert versions.of(event_of(first)) == pg(False, 100, 100)


def test_two_transactions_in_stream_order() -> None:
    """T2 commits after T1, so its commit key (T1's commit LSN, or later) is above T1's, even
    where T2's change was written to the WAL before T1's (transactions interleave)."""
    t1 = make_change("u", after={"id": 1, "v": 1}, lsn=2000, sequence=(1500, 2000), tx_id=10)
    t2 = make_change("u", after={"id": 1, "v": 2}, lsn=1900, sequence=(2100, 1900), tx_id=11)
    assert version(t2) > version(t1)
    # The first transaction after the snapshot (no commit key) and the one after it.
    first = make_change("c", after={"id": 1}, lsn=3000, sequence=(None, 3000))
    second = make_change("u", after={"id": 1}, lsn=3300, sequence=(3200, 3300))
    assert version(second) > version(first)


def test_changes_within_one_transaction_follow_their_lsn() -> None:
    one = make_change("u", after={"id": 1, "v": 1}, lsn=2000, sequence=(1500, 2000))
    two = make_change("u", after={"id": 1, "v": 2}, lsn=2056, sequence=(1500, 2056))
    assert version(one) < version(two)
    assert version(one)[:22] == version(two)[:22]  # same class and commit key
    # Within the first transaction after the snapshot too (its key is each change's LSN).
    first = make_change("c", after={"id": 1}, lsn=3000, sequence=(None, 3000))
    then = make_change("u", after={"id": 1}, lsn=3100, sequence=(None, 3100))
    assert version(first) < version(then)


def test_a_redelivery_replay_or_reemit_has_the_same_version() -> None:
    """The same record bytes at another offset (a dead-letter replay), in another partition (a
    re-created topic), or re-emitted by Debezium with a new envelope time."""
    for name in ("pg-schema-orders-u", "pg-noschema-products-r", "mysql-orders-u"):
        record = golden(name)
        assert version(record, offset=9_999) == version(record)
        assert version(record, partition=5, offset=0) == version(record)
        doc = record.json()
        payload = doc.get("payload", doc)
        payload["ts_ms"] += 60_000
        reemit = KafkaRecord(record.topic, 0, 77, record.key, orjson.dumps(doc))
        assert version(reemit) == version(record)
        assert event_of(reemit).event_id == event_of(record).event_id


def test_mysql_binlog_files_are_ordered_by_their_number() -> None:
    before = make_change(
        "u", connector="mysql", db="shop", after={"id": 1}, binlog=("mysql-bin.000009", 9000, 3)
    )
    after = make_change(
        "u", connector="mysql", db="shop", after={"id": 1}, binlog=("mysql-bin.000010", 4, 0)
    )
    assert version(before) < version(after)
    assert version(after) == "n" + f"{10:020d}{4:020d}" + "2" + f"{0:020d}"
    # Past six digits the names no longer sort as text; the numbers do.
    last = make_change(
        "u", connector="mysql", db="shop", after={"id": 1}, binlog=("mysql-bin.999999", 500, 0)
    )
    rolled = make_change(
        "u", connector="mysql", db="shop", after={"id": 1}, binlog=("mysql-bin.1000000", 4, 0)
    )
    assert "mysql-bin.1000000" < "mysql-bin.999999"
    assert version(last) < version(rolled)


def test_mysql_rows_of_one_event_and_the_snapshot_class() -> None:
    def at(pos: int, row: int, snapshot: str = "false") -> str:
        record = make_change(
            "u",
            connector="mysql",
            db="shop",
            after={"id": 1},
            binlog=("mysql-bin.000003", pos, row),
            snapshot=snapshot,
        )
        return version(record)

    assert at(400, 0) < at(400, 1) < at(401, 0)
    # A snapshot's reads carry its position: the changes streamed after it are newer, those
    # streamed before it (an earlier generation) older.
    assert at(100, 0) < at(154, 0, snapshot="true") < at(154, 0) < at(200, 0)


# -- the forms at their edges -------------------------------------------------------------------


def test_without_a_sequence_the_lsn_is_both_the_commit_key_and_the_lsn() -> None:
    record = make_change("u", after={"id": 1}, lsn=4242, sequence=None)
    assert b'"sequence"' not in (record.value or b"")
    assert event_of(record).source.commit_lsn is None
    assert version(record) == pg(False, 4242, 4242)
    same = make_change("u", after={"id": 1}, lsn=4242, sequence=(None, 4242))
    assert version(same) == version(record)


def test_lsns_at_the_ends_of_64_bits() -> None:
    top = make_change("u", after={"id": 1}, lsn=U64_MAX, sequence=(U64_MAX, U64_MAX))
    assert event_of(top).source.commit_lsn == U64_MAX
    assert version(top) == "q" + "18446744073709551615" + "2" + "18446744073709551615" * 2
    # Debezium writes an LSN past 2**63 as a negative Java long: read back as unsigned.
    signed = make_change("u", after={"id": 1}, lsn=-1, sequence=(-(2**63), -1))
    assert version(signed) == pg(False, 2**63, U64_MAX)
    assert version(signed) > version(make_change("u", after={"id": 1}, lsn=2**63 - 1))
    zero = make_change("u", after={"id": 1}, lsn=0, sequence=(0, 0))
    assert version(zero) == "q" + "0" * 20 + "2" + "0" * 40


@given(
    a=st.tuples(st.booleans(), st.integers(0, U64_MAX), st.integers(0, U64_MAX)),
    b=st.tuples(st.booleans(), st.integers(0, U64_MAX), st.integers(0, U64_MAX)),
)
def test_text_order_is_the_order_of_generation_class_commit_key_and_lsn(
    a: tuple[bool, int, int], b: tuple[bool, int, int]
) -> None:
    def of(snapshot: bool, commit: int, lsn: int) -> tuple[tuple[int, int, int, int], str]:
        record = make_change(
            "u",
            after={"id": 1},
            lsn=lsn,
            sequence=(commit, lsn),
            snapshot="true" if snapshot else "false",
        )
        # A read is keyed by its own LSN (the snapshot's point); a streamed change by its
        # commit key.
        key = (lsn, 1, lsn, lsn) if snapshot else (commit, 2, commit, lsn)
        return key, source_version(event_of(record))

    (ka, va), (kb, vb) = of(*a), of(*b)
    assert len(va) == len(vb) == 62
    assert (va < vb) == (ka < kb) and (va == vb) == (ka == kb)


def test_other_connectors_and_no_position_take_the_time_and_kafka_position() -> None:
    record = make_change("u", after={"id": 1}, source_ts_ms=1_704_164_645_000, partition=2)
    doc = record.json()
    doc["source"]["connector"] = "sqlserver"
    doc["source"]["sequence"] = "not PostgreSQL's"  # another connector's: not checked
    other = KafkaRecord(record.topic, 2, 31, record.key, orjson.dumps(doc))
    assert event_of(other).source.commit_lsn is None
    assert version(other) == f"t{1_704_164_645_000:020d}{2:020d}{31:020d}"
    # The unwrap form without __lsn: the same.
    unwrap = golden("unwrap-products-c")
    assert version(unwrap) == f"t{1_709_373_600_500:020d}{0:020d}{2:020d}"
    assert len(version(unwrap)) == 61


def test_the_unwrap_form_reads_a_sequence_when_given() -> None:
    value = orjson.dumps(
        {
            "id": 3,
            "__op": "u",
            "__lsn": 900,
            "__sequence": '["850","900"]',
            "__source_ts_ms": 1_709_373_600_500,
        }
    )
    record = KafkaRecord("dbserver1.public.products", 0, 4, b'{"id":3}', value)
    assert event_of(record).source.commit_lsn == 850
    assert version(record) == pg(False, 850, 900)
    headers = (("__op", b"u"), ("__lsn", b"900"), ("__source_sequence", b'["850","900"]'))
    in_headers = KafkaRecord(record.topic, 0, 5, b'{"id":3}', b'{"id":3}', headers)
    assert version(in_headers) == pg(False, 850, 900)
    bad = orjson.dumps({"id": 3, "__op": "u", "__lsn": 900, "__sequence": "[850]"})
    with pytest.raises(ParseError) as info:
        Parser().parse_record(record.topic, 0, 6, b'{"id":3}', bad)
    assert info.value.code == "type_mismatch"


# -- parsing source.sequence ----------------------------------------------------------------------

VALID = [
    ('["28330144","28330144"]', 28330144),
    ('[null,"28329528"]', None),
    ("[null,null]", None),
    ('["5",null]', 5),
    ('[ "7" , "8" ]', 7),  # spaces: not Jackson's output, still the same array
    ('["18446744073709551615","1"]', U64_MAX),
    ('["-9223372036854775808","1"]', -(2**63)),  # a negative Java long: an LSN past 2**63
    ('["00000000000000000042","1"]', 42),
]


@pytest.mark.parametrize(("text", "commit_lsn"), VALID)
def test_valid_sequences(text: str, commit_lsn: int | None) -> None:
    record = make_change("u", after={"id": 1}, lsn=8, sequence=text)
    assert event_of(record).source.commit_lsn == commit_lsn
    assert view_of(record).commit_lsn == commit_lsn


MALFORMED: list[Any] = [
    5,
    True,
    ["1", "2"],
    {"lastCommitLsn": "1"},
    "",
    "not json",
    '["1","2"',
    "[1,2]",
    '["1"]',
    '["1","2","3"]',
    "[]",
    '{"0":"1","1":"2"}',
    '"12"',
    '["x","1"]',
    '["1","0x10"]',
    '["1.5","2"]',
    '["1e3","2"]',
    '["","2"]',
    '[" 1","2"]',
    '["\u00b2","2"]',
    '["18446744073709551616","1"]',
    '["-9223372036854775809","1"]',
    '["0000000000000000000000042","1"]',
    '["1",["2"]]',
    '["1",{"a":"2"}]',
    '["1",true]',
]


@pytest.mark.parametrize("bad", MALFORMED, ids=[repr(m)[:30] for m in MALFORMED])
def test_a_malformed_sequence_is_a_type_mismatch_on_both_paths(bad: Any) -> None:
    record = golden("pg-schema-orders-u")
    doc = record.json()
    doc["payload"]["source"]["sequence"] = bad
    value = orjson.dumps(doc)
    messages = []
    for call in (Parser().parse_record, Parser().parse_view):
        with pytest.raises(ParseError) as info:
            call(record.topic, 0, 0, record.key, value)
        assert info.value.code == "type_mismatch"
        assert info.value.message.startswith("source.sequence:"), info.value.message
        messages.append(info.value.message)
    assert messages[0] == messages[1]


def test_a_mysql_or_other_connectors_sequence_is_not_postgresqls() -> None:
    record = golden("mysql-orders-u")
    doc = record.json()
    doc["payload"]["source"]["sequence"] = '{"mysql": "its own"}'
    event = Parser().parse_record(record.topic, 0, 0, record.key, orjson.dumps(doc))
    assert isinstance(event, ChangeEvent) and event.source.commit_lsn is None


def test_the_builder_writes_the_sequence_as_debezium_does() -> None:
    def sequence_of(record: KafkaRecord) -> Any:
        doc = record.json()
        return doc.get("payload", doc)["source"].get("sequence", "absent")

    assert sequence_of(make_change("c", after={"id": 1}, lsn=77)) == '[null,"77"]'
    assert sequence_of(make_change("u", after={"id": 1}, sequence=(70, 77))) == '["70","77"]'
    assert sequence_of(make_change("u", after={"id": 1}, sequence="[1]")) == "[1]"
    assert sequence_of(make_change("u", after={"id": 1}, sequence=None)) == "absent"
    with_schema = make_change("u", after={"id": 1}, lsn=77, sequence=(70, 77), with_schema=True)
    assert sequence_of(with_schema) == '["70","77"]'
    assert version(with_schema) == pg(False, 70, 77)
