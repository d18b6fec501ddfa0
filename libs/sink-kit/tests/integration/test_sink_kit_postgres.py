from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from consumer_runtime import RejectedError, RetryableError, TopicPartition
from devstack import PostgresServer
from devstack.pytest_plugin import SinkSchema
from sink_kit.postgres import FencedError, OffsetStore, copy_rows, db_errors, make_engine


def test_offsets_round_trip_and_overwrite(sink_schema: SinkSchema) -> None:
    engine = make_engine(sink_schema.url)
    metadata = sa.MetaData()
    store = OffsetStore(metadata)
    metadata.create_all(engine)
    a0, a1, b0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
    with engine.begin() as conn:
        store.save(conn, "g", {a0: 10, a1: 5})
        store.save(conn, "other", {a0: 99})
    with engine.begin() as conn:
        store.save(conn, "g", {a0: 12})
    with engine.connect() as conn:
        assert store.load(conn, "g", [a0, a1, b0]) == {a0: 12, a1: 5}
        assert store.load(conn, "g", [a1]) == {a1: 5}
        assert store.load(conn, "g", []) == {}
    engine.dispose()


def test_copy_rows_keeps_nulls_empty_strings_decimals_and_json(sink_schema: SinkSchema) -> None:
    engine = make_engine(sink_schema.url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (a text, b numeric(10,2), c jsonb, d boolean)"))
        n = copy_rows(
            conn,
            "t",
            ["a", "b", "c", "d"],
            [
                ('x,"y"\nz', Decimal("12.50"), '{"k": [1, "é"]}', True),
                ("", None, None, False),
                (None, Decimal("-0.01"), "null", None),
            ],
        )
        assert n == 3
        rows = conn.execute(sa.text("SELECT a, b, c, d FROM t ORDER BY b NULLS FIRST")).all()
    assert rows == [
        ("", None, None, False),
        (None, Decimal("-0.01"), None, None),  # jsonb 'null' reads back as Python None
        ('x,"y"\nz', Decimal("12.50"), {"k": [1, "é"]}, True),
    ]
    engine.dispose()


def test_an_unreachable_database_is_retryable(sink_postgres: PostgresServer) -> None:
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{sink_postgres.port + 1}/sink")
    with (
        pytest.raises(RetryableError, match="database unavailable"),
        db_errors("probe"),
        engine.connect() as conn,
    ):
        conn.execute(sa.text("SELECT 1"))


def test_a_constraint_violation_is_not_retryable(sink_schema: SinkSchema) -> None:
    engine = make_engine(sink_schema.url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE u (id int PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO u VALUES (1)"))
    with pytest.raises(sa.exc.IntegrityError), db_errors("dup"), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO u VALUES (1)"))
    engine.dispose()


@pytest.mark.parametrize(
    ("statement", "params", "says"),
    [
        ("INSERT INTO r (amount) VALUES (:v)", {"v": Decimal("1e12")}, "numeric field overflow"),
        ("INSERT INTO r (qty) VALUES (:v)", {"v": 2**40}, "out of range"),
        ("INSERT INTO r (note) VALUES (:v)", {"v": "nul \x00 inside"}, "NUL"),
        ("INSERT INTO r (qty) VALUES (:v)", {"v": -1}, "violates check constraint"),
        ("INSERT INTO r (k) VALUES (:v)", {"v": None}, "violates not-null constraint"),
        (
            "INSERT INTO r (k) SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i",
            {},
            "index row",
        ),
        ("INSERT INTO r (at) VALUES (:v)", {"v": "infinity-ish"}, "invalid input syntax"),
    ],
)
def test_a_value_the_store_refuses_for_good_is_a_rejection_with_its_reason(
    sink_schema: SinkSchema, statement: str, params: dict[str, object], says: str
) -> None:
    # The runtime isolates the record behind a RejectedError and dead-letters it with this
    # reason; retrying could never succeed, and crashing would stop the partition.
    engine = make_engine(sink_schema.url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE r (k text NOT NULL DEFAULT 'k', amount numeric(10,2), "
                "qty int CHECK (qty >= 0), note text, at timestamptz)"
            )
        )
        conn.execute(sa.text("CREATE INDEX ON r (k)"))
    with pytest.raises(RejectedError) as caught, db_errors("write r"), engine.begin() as conn:
        conn.execute(sa.text(statement), params)
    assert caught.value.code == "store_rejected"
    assert says in caught.value.message
    assert caught.value.__cause__ is not None
    engine.dispose()


def test_url_options_such_as_search_path_survive_the_engine_timeout(
    sink_schema: SinkSchema,
) -> None:
    engine = make_engine(sink_schema.url, statement_timeout_ms=4321)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SHOW search_path")).scalar() == sink_schema.schema
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "4321ms"
    engine.dispose()


def test_a_member_whose_partition_was_claimed_by_another_cannot_write_its_offsets(
    sink_schema: SinkSchema,
) -> None:
    # A zombie (A) stalls past its session timeout; its successor (B) claims the partition and
    # moves on. When A wakes up, its write must neither overwrite B's offsets nor move them
    # backwards: the transaction that carries A's rows is refused as a whole.
    engine = make_engine(sink_schema.url)
    metadata = sa.MetaData()
    a, b = OffsetStore(metadata), OffsetStore(sa.MetaData())
    metadata.create_all(engine)
    p0, p1 = TopicPartition("t", 0), TopicPartition("t", 1)
    with engine.begin() as conn:
        assert a.claim(conn, "g", [p0, p1]) == {}
    with engine.begin() as conn:
        a.save(conn, "g", {p0: 10, p1: 4})
    with engine.begin() as conn:
        assert b.claim(conn, "g", [p0]) == {p0: 10}
    with engine.begin() as conn:
        b.save(conn, "g", {p0: 15})
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE zombie_rows (x int)"))
        with pytest.raises(FencedError, match="t\\[0\\]"):
            a.save(conn, "g", {p0: 30, p1: 6})
        conn.rollback()
    with engine.connect() as conn:
        assert a.load(conn, "g", [p0, p1]) == {p0: 15, p1: 4}
        assert not sa.inspect(conn).has_table("zombie_rows")  # rolled back with the offsets
    # The successor itself never moves its offsets backwards either.
    with pytest.raises(FencedError), engine.begin() as conn:
        b.save(conn, "g", {p0: 12})
    # A keeps p1, which nobody claimed from it.
    with engine.begin() as conn:
        a.save(conn, "g", {p1: 6})
    # An operator's rewrite (no claim: ``cdc offsets reset`` with the group stopped) may.
    with engine.begin() as conn:
        OffsetStore(sa.MetaData()).save(conn, "g", {p0: 3})
    with engine.connect() as conn:
        assert a.load(conn, "g", [p0, p1]) == {p0: 3, p1: 6}
    engine.dispose()
