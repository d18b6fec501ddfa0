"""Reading the Iceberg tables back, on a real catalog (the sink PostgreSQL) and warehouse (the
moto S3), with rows appended by ``ExactlyOnceCommitter``: SQL over the tables gives exact
results; the current-state views apply the ordering rule (newest version, deletes, sweeps, a
tie on the offset); ``as_of`` by time and by snapshot id reads the earlier state; ``snapshots``
lists each commit with its positions; and the ``cdc lake`` commands print the same through
typer's ``CliRunner``, also with the catalog taken from a dev stack description.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
from analytics_flusher import ItemChange, OrderChange
from analytics_flusher.cli import register_commands
from analytics_flusher.errors import LakeReadError, UnknownSnapshotError
from analytics_flusher.store._iceberg import (
    ITEMS_CHANGES,
    ORDERS_CHANGES,
    Position,
    item_rows,
    lake_query,
    open_catalog,
    order_rows,
    scan_tables,
    snapshots,
)
from consumer_runtime import TopicPartition
from typer.testing import CliRunner

ORDERS_TOPIC, ITEMS_TOPIC = "dbserver1.public.orders", "dbserver1.public.order_items"
O0, O1 = TopicPartition(ORDERS_TOPIC, 0), TopicPartition(ORDERS_TOPIC, 1)
I0 = TopicPartition(ITEMS_TOPIC, 0)
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
# 23:30 UTC: a day earlier than the UTC date in every zone east of UTC+0:30.
LATE_EVENING = datetime(2026, 1, 1, 23, 30, tzinfo=UTC)


def v(n: int) -> str:
    """A PostgreSQL-form source version (62 characters); higher ``n``, newer change."""
    return f"q{n:061d}"


def order(
    oid: int,
    offset: int,
    version: int,
    status: str = "pending",
    total: str = "10.00",
    *,
    op: str = "c",
    sweep: int | None = None,
) -> OrderChange:
    deleted = op == "d"
    return OrderChange(
        order_id=oid,
        customer_id=None if deleted else 100 + oid,
        status=None if deleted else status,
        total=None if deleted else Decimal(total),
        created_at=None if deleted else LATE_EVENING,
        deleted=deleted,
        op=op,
        source_ts_ms=T0_MS + offset * 1000,
        offset=offset,
        version=v(version),
        event_id=f"o{offset}",
        sweep=None if sweep is None else v(sweep),
    )


def line(iid: int, offset: int, version: int, quantity: int = 1, *, op: str = "c") -> ItemChange:
    deleted = op == "d"
    return ItemChange(
        item_id=iid,
        order_id=None if deleted else 1,
        product_id=None if deleted else 7,
        quantity=None if deleted else quantity,
        unit_price=None if deleted else Decimal("2.50"),
        deleted=deleted,
        op=op,
        source_ts_ms=T0_MS + offset * 1000,
        offset=offset,
        version=v(version),
        event_id=f"i{offset}",
    )


def append_orders(iceberg: Any, partition: int, changes: list[OrderChange], end: int) -> int:
    """Commit ``changes`` of one orders partition (generation 1); the new snapshot's id."""
    tp = TopicPartition(ORDERS_TOPIC, partition)
    result = iceberg.writer().append(ORDERS_CHANGES, order_rows(partition, changes), {tp: end}, 1)
    assert result.snapshot_id is not None
    return int(result.snapshot_id)


def append_items(iceberg: Any, changes: list[ItemChange], end: int) -> int:
    result = iceberg.writer().append(ITEMS_CHANGES, item_rows(0, changes), {I0: end}, 1)
    assert result.snapshot_id is not None
    return int(result.snapshot_id)


def query(iceberg: Any, sql: str, **kwargs: Any) -> list[tuple[Any, ...]]:
    catalog = open_catalog(iceberg.config)
    return lake_query(catalog, iceberg.config.namespace, sql, **kwargs)[1]


def committed_at(iceberg: Any, table: str, snapshot_id: int) -> datetime:
    snapshot = iceberg.table(table).snapshot_by_id(snapshot_id)
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=snapshot.timestamp_ms)


def next_millisecond() -> None:
    """Past the current millisecond: the next commit's timestamp is later than the last."""
    time.sleep(0.005)


def test_sql_over_the_changes_tables_is_exact(iceberg: Any) -> None:
    append_orders(
        iceberg,
        0,
        [order(1, 0, 10, total="12.30"), order(2, 1, 11, total="99999999.99")],
        end=2,
    )
    append_items(iceberg, [line(10, 0, 10, quantity=3), line(11, 1, 11, quantity=2_147_483_647)], 2)

    columns, rows = lake_query(
        open_catalog(iceberg.config),
        iceberg.config.namespace,
        "SELECT order_id, status, total, created_at FROM orders_changes ORDER BY order_id",
    )
    assert columns == ["order_id", "status", "total", "created_at"]
    assert rows == [
        (1, "pending", Decimal("12.30"), LATE_EVENING),
        (2, "pending", Decimal("99999999.99"), LATE_EVENING),
    ]
    assert rows[0][3].utcoffset() == timedelta(0)  # times come back in UTC
    (revenue,) = query(
        iceberg,
        "SELECT sum(quantity * CAST(unit_price AS DECIMAL(38, 2))) FROM order_items_changes",
    )
    assert revenue == (Decimal("2.50") * (3 + 2_147_483_647),)
    # Several statements: the rows are the last one's.
    assert query(iceberg, "CREATE TABLE t AS SELECT 41 AS n; SELECT n + 1 FROM t") == [(42,)]


def test_the_current_views_apply_the_ordering_rule(iceberg: Any) -> None:
    append_orders(
        iceberg,
        0,
        [
            order(1, 0, 100),
            order(1, 1, 200, "paid"),
            order(2, 2, 110),
            order(2, 3, 210, op="d"),  # deleted
            order(3, 4, 120, "pending"),
            order(4, 5, 50),  # below the sweep below: gone
            order(1, 6, 150, "cancelled"),  # an older change replayed at a higher offset
            order(3, 7, 120, "shipped"),  # the same version again: the higher offset wins
            order(5, 8, 300, op="r", sweep=90),  # a snapshot read carrying the sweep
            order(6, 9, 90, "paid"),  # at the sweep, not below it
        ],
        end=10,
    )
    # The same version on another partition at a lower offset loses the tie too.
    append_orders(iceberg, 1, [order(3, 2, 120, "lost")], end=3)
    append_items(
        iceberg,
        [
            line(10, 0, 100, quantity=1),
            line(10, 1, 200, quantity=4),
            line(11, 2, 110),
            line(11, 3, 210, op="d"),
            line(12, 4, 1),  # an old version: no sweep is recorded for the items
        ],
        end=5,
    )

    orders = query(iceberg, "SELECT order_id, status, order_day FROM orders_current ORDER BY 1")
    assert orders == [
        (1, "paid", date(2026, 1, 1)),
        (3, "shipped", date(2026, 1, 1)),
        (5, "pending", date(2026, 1, 1)),
        (6, "paid", date(2026, 1, 1)),
    ]
    columns, _ = lake_query(
        open_catalog(iceberg.config), iceberg.config.namespace, "SELECT * FROM orders_current"
    )
    assert columns == [
        "order_id",
        "customer_id",
        "status",
        "total",
        "created_at",
        "order_day",
        "source_version",
        "event_time",
    ]
    assert query(iceberg, "SELECT source_version FROM orders_current WHERE order_id = 1") == [
        (v(200),)
    ]
    items = query(iceberg, "SELECT item_id, quantity FROM order_items_current ORDER BY 1")
    assert items == [(10, 4), (12, 1)]


def test_as_of_a_time_or_a_snapshot_reads_the_earlier_state(iceberg: Any) -> None:
    first = append_orders(iceberg, 0, [order(1, 0, 10)], end=1)
    next_millisecond()
    second = append_orders(iceberg, 0, [order(1, 1, 20, "cancelled"), order(2, 2, 21)], end=3)
    next_millisecond()
    items = append_items(iceberg, [line(10, 0, 10)], end=1)
    at_first = committed_at(iceberg, ORDERS_CHANGES, first)
    assert committed_at(iceberg, ORDERS_CHANGES, second) > at_first

    sql = "SELECT order_id, status FROM orders_current ORDER BY 1"
    assert query(iceberg, sql) == [(1, "cancelled"), (2, "pending")]
    assert query(iceberg, sql, as_of=first) == [(1, "pending")]
    assert query(iceberg, sql, as_of=at_first) == [(1, "pending")]
    new_york = timezone(timedelta(hours=-5))  # the same instant, written in another zone
    assert query(iceberg, sql, as_of=at_first.astimezone(new_york)) == [(1, "pending")]
    # Before the first snapshot: the tables are empty (with their columns).
    assert query(iceberg, sql, as_of=at_first - timedelta(milliseconds=1)) == []
    # A snapshot id names one table's commit: the other tables as of that commit's time.
    count = "SELECT count(*) FROM order_items_changes"
    assert query(iceberg, count, as_of=first) == [(0,)]
    assert query(iceberg, count, as_of=items) == [(1,)]
    assert query(iceberg, sql, as_of=items) == [(1, "cancelled"), (2, "pending")]

    catalog = open_catalog(iceberg.config)
    scanned = scan_tables(catalog, iceberg.config.namespace, as_of=first, tables=[ITEMS_CHANGES])
    assert list(scanned) == [ITEMS_CHANGES] and scanned[ITEMS_CHANGES].num_rows == 0
    assert "quantity" in scanned[ITEMS_CHANGES].column_names
    with pytest.raises(UnknownSnapshotError, match="has a snapshot 12345"):
        scan_tables(catalog, iceberg.config.namespace, as_of=12345)
    with pytest.raises(LakeReadError, match="no table nope"):
        scan_tables(catalog, iceberg.config.namespace, tables=["nope"])
    with pytest.raises(ValueError, match="no time zone"):
        scan_tables(catalog, iceberg.config.namespace, as_of=datetime(2026, 1, 1))


def test_snapshots_list_each_commit_with_its_positions(iceberg: Any) -> None:
    first = append_orders(iceberg, 0, [order(1, 0, 10), order(2, 1, 11)], end=2)
    next_millisecond()
    second = append_orders(iceberg, 1, [order(3, 0, 12)], end=1)

    catalog = open_catalog(iceberg.config)
    found = snapshots(catalog, iceberg.config.namespace)
    assert [(s.table, s.snapshot_id, s.parent_id) for s in found] == [
        (ORDERS_CHANGES, first, None),
        (ORDERS_CHANGES, second, first),
    ]
    assert [s.positions for s in found] == [
        {O0: Position(2, 1)},
        {O0: Position(2, 1), O1: Position(1, 1)},
    ]
    assert [(s.operation, s.added_records, s.added_files, s.generation) for s in found] == [
        ("append", 2, 1, 1),
        ("append", 1, 1, 1),
    ]
    assert found[0].committed_at <= found[1].committed_at
    assert found[1].to_dict()["positions"] == {
        ORDERS_TOPIC: {"0": {"offset": 2, "generation": 1}, "1": {"offset": 1, "generation": 1}}
    }
    assert snapshots(catalog, iceberg.config.namespace, ITEMS_CHANGES) == []
    with pytest.raises(LakeReadError, match="no table nope"):
        snapshots(catalog, iceberg.config.namespace, "nope")


# -- the commands ---------------------------------------------------------------------------------


def cdc() -> typer.Typer:
    app = typer.Typer()
    register_commands(app)
    return app


def run(iceberg: Any, *args: str, catalog: bool = True, **env: str | None) -> Any:
    """``cdc lake ARGS`` with the test's AWS environment and none of the lake's variables."""
    options = (
        ["--catalog-uri", iceberg.config.uri, "--warehouse", iceberg.config.warehouse]
        if catalog
        else []
    )
    lake_env: dict[str, str | None] = {
        "LAKE_CATALOG": None,
        "LAKE_CATALOG_URI": None,
        "LAKE_WAREHOUSE": None,
        "LAKE_NAMESPACE": None,
    }
    return CliRunner().invoke(
        cdc(),
        ["lake", *args, *options, "--namespace", iceberg.config.namespace],
        env={**iceberg.aws_env, **lake_env, **env},
    )


def test_the_commands_print_the_rows_snapshots_and_tables(iceberg: Any) -> None:
    first = append_orders(iceberg, 0, [order(1, 0, 10, total="12.30")], end=1)
    next_millisecond()
    second = append_orders(iceberg, 0, [order(1, 1, 20, "cancelled", "12.30"), order(2, 2, 21)], 3)
    sql = "SELECT order_id, status, total FROM orders_current ORDER BY order_id"

    done = run(iceberg, "query", sql, "--format", "csv")
    assert done.exit_code == 0, done.output
    assert done.stdout == "order_id,status,total\n1,cancelled,12.30\n2,pending,10.00\n"
    done = run(iceberg, "query", sql, "--format", "csv", "--as-of", str(first))
    assert done.stdout == "order_id,status,total\n1,pending,12.30\n"
    at_first = committed_at(iceberg, ORDERS_CHANGES, first).isoformat()
    done = run(iceberg, "query", sql, "--format", "json", "--as-of", at_first)
    assert json.loads(done.stdout) == [{"order_id": 1, "status": "pending", "total": "12.30"}]
    done = run(iceberg, "query", sql, COLUMNS="200")
    assert done.exit_code == 0, done.output
    (cells,) = [r.split("│")[1:4] for r in done.stdout.splitlines() if "cancelled" in r]
    assert [c.strip() for c in cells] == ["1", "cancelled", "12.30"]
    assert cells[0].startswith("  ") and cells[1].startswith(" cancelled")  # numbers on the right
    assert "2 rows" in done.stdout

    done = run(iceberg, "snapshots", ORDERS_CHANGES, "--json")
    assert done.exit_code == 0, done.output
    listed = json.loads(done.stdout)
    assert [(s["snapshot_id"], s["parent_id"]) for s in listed] == [(first, None), (second, first)]
    assert [s["positions"][ORDERS_TOPIC]["0"]["offset"] for s in listed] == [1, 3]
    done = run(iceberg, "snapshots", COLUMNS="300")
    assert f"{ORDERS_TOPIC}[0]=3/g1" in done.stdout

    done = run(iceberg, "tables", "--json")
    assert done.exit_code == 0, done.output
    assert [(t["table"], t["rows"], t["current_snapshot_id"]) for t in json.loads(done.stdout)] == [
        (ITEMS_CHANGES, 0, None),
        (ORDERS_CHANGES, 3, second),
    ]


def test_the_commands_fail_in_one_line(
    iceberg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no dev stack description where the commands look for one
    append_orders(iceberg, 0, [order(1, 0, 10)], end=1)
    for args, message in (
        (("query", "SELECT * FROM nope"), "error: query failed: Catalog Error: Table with name"),
        (("query", "SELECT 1", "--as-of", "12345"), "has a snapshot 12345"),
        (("query", "SELECT 1", "--as-of", "soon"), "expected a snapshot id"),
        (("snapshots", "nope"), f"no table nope in namespace {iceberg.config.namespace}"),
    ):
        done = run(iceberg, *args)
        assert done.exit_code == 2, done.output
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = run(iceberg, "tables", catalog=False)
    assert done.exit_code == 2 and "no Iceberg catalog" in done.stderr, done.output
    unreachable = "postgresql+psycopg2://nobody@127.0.0.1:1/x"
    done = run(iceberg, "tables", "--catalog-uri", unreachable, catalog=False)
    assert done.exit_code == 2 and "catalog database" in done.stderr, done.output


def test_the_commands_find_the_catalog_of_a_running_dev_stack(iceberg: Any, tmp_path: Path) -> None:
    append_orders(iceberg, 0, [order(1, 0, 10)], end=1)
    aws_env = {k: v for k, v in iceberg.aws_env.items() if k != "AWS_ENDPOINT_URL"}
    stack = tmp_path / "stack.json"
    stack.write_text(
        json.dumps(
            {
                "bootstrap": "127.0.0.1:9092",
                "aws_endpoint_url": iceberg.aws_env["AWS_ENDPOINT_URL"],
                "aws_env": aws_env,
                "service_env": {
                    "analytics-flusher": {
                        "S3_BUCKET": iceberg.bucket,
                        "LAKE_CATALOG_URI": iceberg.config.uri,
                        "LAKE_WAREHOUSE": iceberg.config.warehouse,
                        "LAKE_NAMESPACE": iceberg.config.namespace,
                    }
                },
            }
        )
    )
    # Nothing of the lake or of AWS in the environment: all of it from the stack.
    no_aws = dict.fromkeys(iceberg.aws_env)
    done = run(iceberg, "tables", "--json", "--stack", str(stack), catalog=False, **no_aws)
    assert done.exit_code == 0, done.output
    assert [(t["table"], t["rows"]) for t in json.loads(done.stdout)] == [
        (ITEMS_CHANGES, 0),
        (ORDERS_CHANGES, 1),
    ]
    # A stack whose flusher writes no Iceberg tables, named explicitly: said so.
    stack.write_text(json.dumps({"aws_endpoint_url": "http://x", "service_env": {}}))
    done = run(iceberg, "tables", "--stack", str(stack), catalog=False, **no_aws)
    assert done.exit_code == 2 and "has no LAKE_CATALOG_URI" in done.stderr, done.output


def test_reports_are_recomputed_on_demand(iceberg: Any) -> None:
    append_orders(iceberg, 0, [order(1, 0, 10, total="12.30"), order(2, 1, 11)], end=2)
    done = run(iceberg, "reports", "--window-seconds", "60")
    assert done.exit_code == 0, done.output
    assert "sales: 1 rows" in done.stdout
    assert "top_customers:" in done.stdout
    again = run(iceberg, "reports", "--window-seconds", "60")
    assert again.exit_code == 0, again.output
    assert "up to date" in again.stdout
    done = run(iceberg, "query", "SELECT sum(net_orders) FROM sales", "--format", "csv")
    assert done.stdout.splitlines()[1] == "2"


def test_the_cdc_executable_keeps_logs_off_stdout(iceberg: Any, tmp_path: Path) -> None:
    """Libraries log while a command runs (a materialization logs each run); the real ``cdc``
    sends that to stderr, so stdout is the command's output alone (``--json`` documents)."""
    append_orders(iceberg, 0, [order(1, 0, 10)], end=1)
    cdc = Path(sys.executable).with_name("cdc")
    options = ["--catalog-uri", iceberg.config.uri, "--warehouse", iceberg.config.warehouse]
    options += ["--namespace", iceberg.config.namespace]
    env = {**os.environ, **iceberg.aws_env, "COLUMNS": "200"}
    done = subprocess.run(
        [str(cdc), "lake", "reports", *options],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "report tables materialized" not in done.stdout
    assert done.stdout.startswith("sales: "), done.stdout
    listed = subprocess.run(
        [str(cdc), "lake", "tables", "--json", *options],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert {t["table"] for t in json.loads(listed.stdout)} >= {"orders_changes", "sales"}
