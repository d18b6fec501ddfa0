"""Fast COPY (text format) of many rows: the kit's one COPY encoder.

``sink_kit.postgres.copy_rows`` is ``copy_text_rows``. A value is rewritten only if it holds a
character COPY needs escaped (backslash, tab, newline, carriage return), which JSON text rarely
does outside string escapes; escaping every value with ``str.translate`` (a mapping walked per
character) cost far more than the COPY itself on ~1 KB JSON documents. The whole buffer is
handed to the server in one read, which matters when another thread of the process is busy (a
pipelined writer next to the decoding loop).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.engine import Connection

__all__ = ["copy_text", "copy_text_rows", "encode_row", "encode_value"]


def encode_value(value: Any) -> str:
    """One value in COPY's text format: ``\\N`` for NULL, backslash escapes for the rest."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    text = value if type(value) is str else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def encode_row(values: Sequence[Any]) -> str:
    """One row as a COPY text line, newline included (for ``copy_text``)."""
    return "\t".join([encode_value(v) for v in values]) + "\n"


def copy_text(conn: Connection, table: str, columns: Sequence[str], text: str) -> None:
    """COPY rows already encoded as lines (``encode_row``) into ``table``.

    Lets a caller encode rows where it has time to spare (e.g. while the previous batch is
    being written) and hand the database only the finished text.
    """
    if not text:
        return
    cols = ", ".join(f'"{c}"' for c in columns)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur: Any = raw.cursor()
    try:
        # One read of the whole buffer: psycopg2 takes the GIL back for every chunk it reads
        # (8 KB by default), and with another busy thread each take can wait a switch interval.
        cur.copy_expert(f"COPY {table} ({cols}) FROM STDIN", io.StringIO(text), size=len(text) + 1)
    finally:
        cur.close()


def copy_text_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """COPY ``rows`` into ``table``; same contract as ``sink_kit.postgres.copy_rows``.

    Values must already be in PostgreSQL's text form for their column (strings, JSON as text,
    numbers, ``Decimal``, ISO-8601 timestamps, booleans, bytea as ``\\x``-hex strings).
    Returns the number of rows copied.
    """
    lines = [encode_row(row) for row in rows]
    copy_text(conn, table, columns, "".join(lines))
    return len(lines)
