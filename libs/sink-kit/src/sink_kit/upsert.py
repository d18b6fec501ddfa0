"""Batch upserts in one statement: ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT``.

For sinks that fold a batch to one row per key and write it back (read models, counters):
one round trip per table and batch whatever the number of rows, no temporary table, and the
``ON CONFLICT`` clause can add to the stored values (``count = t.count + excluded.count``)
instead of replacing them. Each column travels as one array literal (text), cast on the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["array_literal", "upsert_rows"]


def upsert_rows(
    conn: Connection,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[Any]],
    conflict: Sequence[str],
    update: Sequence[str] | Mapping[str, str] | None = None,
    *,
    returning: str | None = None,
) -> list[Any]:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``, resolving key conflicts.

    ``columns``: ``(name, PostgreSQL type)`` pairs, e.g. ``("total", "numeric")``.
    ``conflict``: the key columns. ``update``: ``None`` = every non-key column takes the new
    value; a sequence = only those columns; a mapping = column -> SQL expression over ``t``
    (the stored row) and ``excluded`` (the new one); empty = ``DO NOTHING``.
    ``returning``: a column list to return (e.g. the keys actually inserted with DO NOTHING).
    The rows must not repeat a key (PostgreSQL cannot update a row twice in one statement).
    Returns the ``returning`` rows, else an empty list.
    """
    data = list(rows)
    if not data:
        return []
    names = [name for name, _ in columns]
    params = {f"c{i}": array_literal([row[i] for row in data]) for i in range(len(columns))}
    arrays = ", ".join(f"CAST(:c{i} AS {pgtype}[])" for i, (_, pgtype) in enumerate(columns))
    if update is None:
        sets = {n: f"excluded.{_q(n)}" for n in names if n not in conflict}
    elif isinstance(update, Mapping):
        sets = dict(update)
    else:
        sets = {n: f"excluded.{_q(n)}" for n in update}
    action = (
        "DO UPDATE SET " + ", ".join(f"{_q(n)} = {expr}" for n, expr in sets.items())
        if sets
        else "DO NOTHING"
    )
    sql = (
        f"INSERT INTO {table} AS t ({', '.join(map(_q, names))}) "  # noqa: S608
        f"SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({', '.join(map(_q, conflict))}) {action}"
    )
    if returning:
        sql += f" RETURNING {returning}"
        return list(conn.execute(sa.text(sql), params))
    conn.execute(sa.text(sql), params)
    return []


def array_literal(values: Iterable[Any]) -> str:
    """A PostgreSQL array in its text input form (``{1,NULL,"a\\"b"}``).

    Sent as one string parameter and cast to the column type's array on the server: parsing one
    literal is several times faster, on both sides, than an ``ARRAY[...]`` of typed elements.
    Elements: None, bool, int, float, Decimal, str, date/datetime (ISO-8601, keep the offset).
    """
    return "{" + ",".join(map(_element, values)) + "}"


def _element(value: Any) -> str:
    if value is None:
        return "NULL"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    text = value.isoformat() if isinstance(value, date | datetime) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
