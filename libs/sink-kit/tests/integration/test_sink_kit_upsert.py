from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from devstack.pytest_plugin import SinkSchema
from sink_kit.postgres import make_engine
from sink_kit.upsert import upsert_rows

COLUMNS = [("id", "bigint"), ("name", "text"), ("n", "integer"), ("amount", "numeric"),
           ("at", "timestamptz")]  # fmt: skip
AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def test_replace_add_and_do_nothing(sink_schema: SinkSchema) -> None:
    engine = make_engine(sink_schema.url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id bigint PRIMARY KEY, name text, n integer, "
                             "amount numeric(10,2), at timestamptz)"))  # fmt: skip
        assert upsert_rows(conn, "t", COLUMNS, [], ["id"]) == []
        upsert_rows(conn, "t", COLUMNS, [(1, "a\tb", 1, Decimal("1.50"), AT),
                                         (2, None, 2, None, None)], ["id"])  # fmt: skip
        # Replace every non-key column.
        upsert_rows(conn, "t", COLUMNS, [(2, "b", 5, Decimal("2.00"), AT)], ["id"])
        # Add to the stored value.
        upsert_rows(
            conn, "t", COLUMNS, [(1, "ignored", 10, Decimal("0.25"), AT)], ["id"],
            {"n": "t.n + excluded.n", "amount": "t.amount + excluded.amount"},
        )  # fmt: skip
        # DO NOTHING, returning what was really inserted.
        new = upsert_rows(conn, "t", COLUMNS, [(2, "x", 0, None, None), (3, "c", 3, None, None)],
                          ["id"], {}, returning="id")  # fmt: skip
        assert [r[0] for r in new] == [3]
        rows = conn.execute(sa.text("SELECT * FROM t ORDER BY id")).all()
    assert rows == [
        (1, "a\tb", 11, Decimal("1.75"), AT),
        (2, "b", 5, Decimal("2.00"), AT),
        (3, "c", 3, None, None),
    ]
    engine.dispose()
