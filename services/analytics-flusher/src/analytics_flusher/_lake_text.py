"""Pure: the text of the ``cdc lake`` commands (``cli``): ``--as-of`` parsed, and a query's
rows, the snapshots and the tables rendered as a rich table, CSV or JSON.

Values are written exactly: decimals in full (``12.30``, as text in JSON, so no reader turns
them into binary floats), times in ISO 8601 with their offset (UTC: the query runs with DuckDB's
time zone set to UTC), bytes in hex.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Any

import orjson
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

__all__ = [
    "Format",
    "cell",
    "parse_as_of",
    "positions_text",
    "render_rows",
    "snapshots_table",
    "summary_line",
    "tables_table",
    "to_json",
]

_SNAPSHOT_ID = re.compile(r"-?\d+")
_AS_OF_HELP = "a snapshot id (digits) or an ISO-8601 time such as 2026-12-06T10:00:00Z"


class Format(StrEnum):
    """How ``cdc lake query`` prints its rows."""

    table = "table"
    csv = "csv"
    json = "json"


def parse_as_of(text: str | None) -> int | datetime | None:
    """``--as-of``: None (now), a snapshot id (only digits), or an ISO-8601 time; a time
    without an offset is UTC. ``ValueError`` naming what is accepted."""
    if text is None:
        return None
    value = text.strip()
    if _SNAPSHOT_ID.fullmatch(value):
        return int(value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--as-of {text!r}: expected {_AS_OF_HELP}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _default(value: Any) -> Any:
    """What orjson cannot write itself: decimals as exact text, bytes as hex, the rest
    (intervals, ...) as their text."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def to_json(value: Any) -> str:
    """``value`` as indented JSON (see ``_default``)."""
    return orjson.dumps(
        value, default=_default, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    ).decode()


def cell(value: Any) -> str:
    """One value as text: '' for NULL, decimals in full, times in ISO 8601, lists and structs
    as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()
    return str(value)


def _numeric(rows: Sequence[Sequence[Any]], index: int) -> bool:
    values = [row[index] for row in rows if row[index] is not None]
    return bool(values) and all(
        isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in values
    )


def render_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    output: Format,
) -> str | Table:
    """A query's result: a rich ``Table`` (numbers right-aligned, NULL shown dimmed), CSV with
    a header line (NULL empty), or a JSON array of one object per row (keyed by column name: a
    name that appears twice keeps the last column's value)."""
    if output is Format.json:
        return to_json([dict(zip(columns, row, strict=True)) for row in rows])
    if output is Format.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([cell(value) for value in row] for row in rows)
        return buffer.getvalue()
    table = Table()
    for index, name in enumerate(columns):
        justify: JustifyMethod = "right" if _numeric(rows, index) else "left"
        table.add_column(Text(name), justify=justify, overflow="fold")
    for row in rows:
        table.add_row(
            *(Text("NULL", style="dim") if value is None else Text(cell(value)) for value in row)
        )
    return table


def positions_text(positions: Mapping[str, Mapping[str, Mapping[str, int]]] | None) -> str:
    """``SnapshotInfo.to_dict()["positions"]`` as ``topic[partition]=next offset/g<generation>``,
    space-separated (empty: none recorded)."""
    if not positions:
        return ""
    return " ".join(
        f"{topic}[{partition}]={p['offset']}/g{p['generation']}"
        for topic, partitions in positions.items()
        for partition, p in partitions.items()
    )


def _text(value: Any) -> Text:
    return Text("" if value is None else cell(value))


def _utc(iso: str | None) -> Text:
    """An ISO-8601 UTC time as ``2026-12-06 10:00:00.123`` (the column says UTC)."""
    if iso is None:
        return Text("")
    when = datetime.fromisoformat(iso).astimezone(UTC)
    return Text(when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d}")


def summary_line(count: int, as_of: int | datetime | None) -> str:
    """What a query printed as a table read: ``2 rows, as of snapshot 42``."""
    rows = f"{count} row" + ("" if count == 1 else "s")
    if as_of is None:
        return rows
    if isinstance(as_of, datetime):
        return f"{rows}, as of {as_of.astimezone(UTC).isoformat()}"
    return f"{rows}, as of snapshot {as_of}"


_SNAPSHOT_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("table", "left"),
    ("snapshot", "right"),
    ("parent", "right"),
    ("committed (UTC)", "left"),
    ("operation", "left"),
    ("+records", "right"),
    ("-records", "right"),
    ("+files", "right"),
    ("-files", "right"),
    ("generation", "right"),
)
_TABLE_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("table", "left"),
    ("rows", "right"),
    ("data files", "right"),
    ("snapshots", "right"),
    ("current snapshot", "right"),
    ("committed (UTC)", "left"),
)


def snapshots_table(snapshots: Sequence[Mapping[str, Any]]) -> Table:
    """``SnapshotInfo.to_dict()`` rows as a rich table, in the order given."""
    table = Table(caption=Text("positions: topic[partition]=next offset/g<generation>"))
    for name, justify in _SNAPSHOT_COLUMNS:
        table.add_column(name, justify=justify, overflow="fold")
    table.add_column("positions", overflow="fold")
    for s in snapshots:
        table.add_row(
            _text(s["table"]),
            _text(s["snapshot_id"]),
            _text(s["parent_id"]),
            _utc(s["committed_at"]),
            _text(s["operation"]),
            _text(s["added_records"]),
            _text(s["deleted_records"]),
            _text(s["added_files"]),
            _text(s["deleted_files"]),
            _text(s["generation"]),
            Text(positions_text(s["positions"])),
        )
    return table


def tables_table(tables: Sequence[Mapping[str, Any]], namespace: str) -> Table:
    """``TableInfo.to_dict()`` rows as a rich table."""
    table = Table(title=f"namespace {namespace}")
    for name, justify in _TABLE_COLUMNS:
        table.add_column(name, justify=justify, overflow="fold")
    for t in tables:
        table.add_row(
            _text(t["table"]),
            _text(t["rows"]),
            _text(t["data_files"]),
            _text(t["snapshots"]),
            _text(t["current_snapshot_id"]),
            _utc(t["committed_at"]),
        )
    return table
