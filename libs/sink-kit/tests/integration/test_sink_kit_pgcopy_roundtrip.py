"""``sink_kit.pgcopy`` against the real PostgreSQL: what is copied is what is read back."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from devstack.pytest_plugin import SinkSchema
from sink_kit.postgres import make_engine


def test_copy_text_rows_round_trips(sink_schema: SinkSchema) -> None:
    from sink_kit.pgcopy import copy_text_rows

    engine = make_engine(sink_schema.url)
    rows = [
        ('x,"y"\nz\\w\tv', Decimal("12.50"), '{"k": [1, "é", "a\\"b"]}', True),
        ("", None, None, False),
        (None, Decimal("-0.01"), "null", None),
    ]
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t1 (a text, b numeric(10,2), c jsonb, d boolean)"))
        assert copy_text_rows(conn, "t1", ["a", "b", "c", "d"], rows) == 3
        assert copy_text_rows(conn, "t1", ["a", "b", "c", "d"], []) == 0
        one = conn.execute(sa.text("SELECT a, b, c, d FROM t1 ORDER BY b NULLS FIRST")).all()
    assert [tuple(r) for r in one] == [
        ("", None, None, False),
        (None, Decimal("-0.01"), None, None),  # jsonb 'null' reads back as JSON null: None
        ('x,"y"\nz\\w\tv', Decimal("12.50"), {"k": [1, "é", 'a"b']}, True),
    ]
    engine.dispose()
