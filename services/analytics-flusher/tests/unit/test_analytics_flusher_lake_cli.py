"""The pure parts of ``cdc lake``: ``--as-of`` parsed, values and rows rendered (``_lake_text``),
where the catalog comes from (``cli``: the options over the dev stack's flusher), and the
current-state views' ``order_day`` under DuckDB session time zones other than UTC (DuckDB over
in-memory Arrow tables).

The commands against a real catalog: tests/integration, ``test_analytics_flusher_lake_cli.py``.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from analytics_flusher._lake_text import (
    Format,
    cell,
    parse_as_of,
    positions_text,
    render_rows,
    summary_line,
)
from analytics_flusher.cli import (
    LakeCliError,
    StackLake,
    settings_overrides,
    stack_lake,
    wants_stack,
)
from analytics_flusher.store._iceberg import CHANGES_TABLES, CURRENT_VIEWS
from pyiceberg.io.pyarrow import schema_to_pyarrow
from rich.console import Console
from rich.table import Table


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("6028311065087194753", 6028311065087194753),
        (" 42 ", 42),
        ("2026-12-06T10:00:00Z", datetime(2026, 12, 6, 10, tzinfo=UTC)),
        ("2026-12-06T10:00:00.250Z", datetime(2026, 12, 6, 10, 0, 0, 250_000, tzinfo=UTC)),
        ("2026-12-06T11:00:00+01:00", datetime(2026, 12, 6, 10, tzinfo=UTC)),
        ("2026-12-06T10:00:00", datetime(2026, 12, 6, 10, tzinfo=UTC)),  # no offset: UTC
        ("2026-12-06", datetime(2026, 12, 6, tzinfo=UTC)),
    ],
)
def test_as_of_is_a_snapshot_id_or_a_time(text: str | None, expected: object) -> None:
    parsed = parse_as_of(text)
    assert parsed == expected
    assert type(parsed) is type(expected)
    if isinstance(parsed, datetime):
        assert parsed.utcoffset() is not None


@pytest.mark.parametrize("text", ["yesterday", "", "12.5", "2026-13-01T00:00:00Z", "0x2a"])
def test_anything_else_is_refused_with_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="expected a snapshot id"):
        parse_as_of(text)


def test_values_are_written_exactly() -> None:
    when = datetime(2026, 1, 1, 23, 30, 0, 123456, tzinfo=UTC)
    assert cell(None) == ""
    assert cell(True) == "true"
    assert cell(Decimal("12.30")) == "12.30"
    assert cell(Decimal("1E+2")) == "100"
    assert cell(Decimal("99999999999999999999999999999999999.99")) == (
        "99999999999999999999999999999999999.99"
    )
    assert cell(when) == "2026-01-01T23:30:00.123456+00:00"
    assert cell(date(2026, 1, 1)) == "2026-01-01"
    assert cell(b"\x00\xff") == "00ff"
    assert cell([1, Decimal("2.50")]) == '[1,"2.50"]'
    assert cell({"x": None}) == '{"x":null}'


ROWS = [
    (1, "a,b", Decimal("12.30"), datetime(2026, 1, 1, tzinfo=UTC)),
    (22, None, None, None),
]
COLUMNS = ["id", "note", "total", "at"]


def test_csv_has_a_header_quotes_what_needs_it_and_leaves_null_empty() -> None:
    assert render_rows(COLUMNS, ROWS, Format.csv) == (
        'id,note,total,at\n1,"a,b",12.30,2026-01-01T00:00:00+00:00\n22,,,\n'
    )
    assert render_rows(["n"], [], Format.csv) == "n\n"


def test_json_is_an_object_per_row_with_exact_decimals() -> None:
    rendered = render_rows(COLUMNS, ROWS, Format.json)
    assert isinstance(rendered, str)
    assert json.loads(rendered) == [
        {"id": 1, "note": "a,b", "total": "12.30", "at": "2026-01-01T00:00:00+00:00"},
        {"id": 22, "note": None, "total": None, "at": None},
    ]
    assert render_rows(["n"], [], Format.json) == "[]"


def _text(table: Table) -> str:
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_the_table_right_aligns_numbers_and_shows_null() -> None:
    rendered = render_rows(COLUMNS, ROWS, Format.table)
    assert isinstance(rendered, Table)
    lines = _text(rendered).splitlines()
    first = next(line for line in lines if "a,b" in line).split("│")
    second = next(line for line in lines if "22" in line).split("│")
    assert first[1] == "  1 " and first[3] == " 12.30 "  # numbers on the right
    assert first[2].startswith(" a,b")  # text on the left
    assert [c.strip() for c in second[1:5]] == ["22", "NULL", "NULL", "NULL"]


def test_positions_and_the_summary_line() -> None:
    positions = {
        "orders": {"0": {"offset": 12, "generation": 4}, "1": {"offset": 7, "generation": 5}}
    }
    assert positions_text(positions) == "orders[0]=12/g4 orders[1]=7/g5"
    assert positions_text(None) == ""
    assert summary_line(1, None) == "1 row"
    assert summary_line(2, 42) == "2 rows, as of snapshot 42"
    plus_one = timezone(timedelta(hours=1))
    assert summary_line(0, datetime(2026, 12, 6, 11, tzinfo=plus_one)) == (
        "0 rows, as of 2026-12-06T10:00:00+00:00"
    )


# -- where the catalog is -------------------------------------------------------------------------

STACK_ENV = {
    "S3_BUCKET": "lake-local",
    "LAKE_CATALOG_URI": "postgresql+psycopg2://stack@127.0.0.1:5432/lake",
    "LAKE_NAMESPACE": "dev",
    "WINDOW_SECONDS": "60",
}
LAKE = StackLake(STACK_ENV, {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"})


def test_the_stack_is_consulted_only_without_a_catalog_uri_and_for_the_sql_catalog() -> None:
    assert wants_stack(None, {})
    assert not wants_stack("postgresql+psycopg2://x/y", {})
    assert not wants_stack(None, {"LAKE_CATALOG_URI": "postgresql+psycopg2://x/y"})
    assert not wants_stack(None, {"LAKE_CATALOG": "glue"})


def test_the_options_override_the_stacks_lake() -> None:
    options = {"lake_catalog_uri": None, "lake_warehouse": "s3://mine/wh", "lake_namespace": None}
    assert settings_overrides(options, None) == {"lake_warehouse": "s3://mine/wh"}
    assert settings_overrides(options, LAKE) == {
        "s3_bucket": "lake-local",
        "lake_catalog_uri": "postgresql+psycopg2://stack@127.0.0.1:5432/lake",
        "lake_namespace": "dev",
        "lake_warehouse": "s3://mine/wh",
        "aws_endpoint_url": "http://127.0.0.1:5000",
    }


def _stack(path: Path, flusher_env: dict[str, str]) -> Path:
    path.write_text(
        json.dumps(
            {
                "bootstrap": "127.0.0.1:9092",
                "aws_endpoint_url": "http://127.0.0.1:5000",
                "aws_env": {"AWS_ACCESS_KEY_ID": "testing"},
                "service_env": {"analytics-flusher": flusher_env, "other": {"X": "1"}},
            }
        )
    )
    return path


def test_the_stack_description_gives_the_flushers_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = stack_lake(_stack(tmp_path / "stack.json", STACK_ENV))
    assert found == StackLake(
        STACK_ENV, {"AWS_ACCESS_KEY_ID": "testing", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    )
    # A flusher without Iceberg tables: nothing, or an error when the file was named.
    without = _stack(tmp_path / "parquet-only.json", {"S3_BUCKET": "lake-local"})
    with pytest.raises(LakeCliError, match="has no LAKE_CATALOG_URI"):
        stack_lake(without)
    with pytest.raises(LakeCliError, match="no stack description"):
        stack_lake(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(LakeCliError, match="is not a dev stack description"):
        stack_lake(tmp_path / "broken.json")
    monkeypatch.chdir(tmp_path)  # the default path, relative to where cdc runs: absent here
    assert stack_lake(None) is None


# -- the views' order_day -------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Pacific/Kiritimati"])
def test_order_day_is_the_utc_date_whatever_the_session_time_zone(zone: str) -> None:
    orders = schema_to_pyarrow(CHANGES_TABLES["orders_changes"], include_field_ids=False)
    row = dict.fromkeys(orders.names) | {
        "op": "c",
        "order_id": 1,
        "status": "pending",
        "source_version": "q1",
        "event_time": datetime(2026, 1, 1, tzinfo=UTC),
        "kafka_partition": 0,
        "kafka_offset": 0,
    }
    late = row | {"created_at": datetime(2026, 1, 1, 23, 30, tzinfo=UTC)}
    early = row | {"order_id": 2, "created_at": datetime(2026, 1, 2, 0, 30, tzinfo=UTC)}
    items = schema_to_pyarrow(CHANGES_TABLES["order_items_changes"], include_field_ids=False)
    with duckdb.connect() as con:
        con.execute(f"SET TimeZone = '{zone}'")
        con.register("orders_changes", pa.Table.from_pylist([late, early], schema=orders))
        con.register("order_items_changes", items.empty_table())
        con.execute(CURRENT_VIEWS)
        days = con.sql("SELECT order_id, order_day FROM orders_current ORDER BY 1").fetchall()
    assert days == [(1, date(2026, 1, 1)), (2, date(2026, 1, 2))]
