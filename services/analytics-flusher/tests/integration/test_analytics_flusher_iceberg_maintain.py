"""Table maintenance of the Iceberg changes tables on a real catalog (PostgreSQL) and warehouse
(the AWS emulator's S3), with the flusher's committer writing.

Compaction leaves one file per day partition with the same rows, the positions and a readable
pre-compaction snapshot. A writer committing between the compaction's plan and its commit
loses nothing and duplicates nothing, whether it lands before the check (the plan still holds
on the new head and is committed there) or inside the catalog commit (refused, planned
again); a compaction whose files another one replaced plans again; one overtaken every time
gives up, leaving nothing behind. Expiry keeps the current snapshot and the chain down to the
one recording positions, and deletes exactly the files no remaining snapshot references; the
writer goes on after maintenance with its positions intact. ``cdc lake maintain`` plans with
``--dry-run`` and maintains without.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import typer
from analytics_flusher import ItemChange
from analytics_flusher._maintain_cli import add_commands
from analytics_flusher.store._iceberg import (
    ITEMS_CHANGES,
    ORDERS_CHANGES,
    Position,
    compact,
    expire_snapshots,
    item_rows,
    maintain,
    open_catalog,
    recorded_positions,
)
from consumer_runtime import TopicPartition
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation
from typer.testing import CliRunner

TOPIC = "dbserver1.public.order_items"
P0 = TopicPartition(TOPIC, 0)
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000
JAN_1, JAN_2, JAN_3 = "event_day=2026-01-01", "event_day=2026-01-02", "event_day=2026-01-03"


def changes(offsets: range, days: int = 1, first_day: int = 0, quantity: int = 1) -> pa.Table:
    """``order_items`` creations of Kafka partition 0, offset ``o`` on day ``first_day + o %
    days`` (2026-01-01 is day 0)."""
    return item_rows(
        0,
        [
            ItemChange(
                item_id=o,
                order_id=o // 3 + 1,
                product_id=o % 7 + 1,
                quantity=quantity,
                unit_price=Decimal("2.50"),
                deleted=False,
                op="c",
                source_ts_ms=T0_MS + (first_day + o % days) * DAY_MS + o * 1000,
                offset=o,
                version=f"q{o:061d}",
                event_id=f"0-{o}",
            )
            for o in offsets
        ],
    )


def append_batches(writer: Any, batches: int, size: int = 10, days: int = 2) -> int:
    """``batches`` commits of ``size`` offsets each over ``days`` days; the next offset."""
    for b in range(batches):
        end = (b + 1) * size
        writer.append(ITEMS_CHANGES, changes(range(b * size, end), days), {P0: end}, 1)
    return batches * size


def all_rows(table: Table, snapshot_id: int | None = None) -> list[dict[str, Any]]:
    rows = table.scan(snapshot_id=snapshot_id).to_arrow().to_pylist()
    return sorted(rows, key=lambda r: (r["kafka_partition"], r["kafka_offset"]))


def offsets(table: Table) -> Counter[int]:
    return Counter(table.scan().to_arrow().column("kafka_offset").to_pylist())


def files_per_day(table: Table) -> dict[str, int]:
    spec, schema = table.spec(), table.schema()
    return dict(
        Counter(
            spec.partition_to_path(task.file.partition, schema)
            for task in table.scan().plan_files()
        )
    )


def operations(table: Table) -> list[str]:
    return [s.summary.operation.value for s in table.snapshots() if s.summary is not None]


class InterleavingCatalog(SqlCatalog):
    """The real catalog, which runs ``before_commit(n)`` before its ``n``-th ``commit_table``
    (every attempt of a transaction reaches the catalog through it)."""

    def __init__(self, name: str, before_commit: Any, **properties: str) -> None:
        super().__init__(name, **properties)
        self.before_commit = before_commit
        self.commits = 0

    def commit_table(self, table: Any, requirements: Any, updates: Any) -> Any:
        self.commits += 1
        self.before_commit(self.commits)
        return super().commit_table(table, requirements, updates)


def test_compaction_leaves_one_file_per_day_with_the_same_rows(iceberg: Any) -> None:
    writer = iceberg.writer()
    end = append_batches(writer, 8)
    # A third day with two small files: below min_input_files, left as it is.
    for first in (end, end + 5):
        writer.append(ITEMS_CHANGES, changes(range(first, first + 5), 1, 2), {P0: first + 5}, 1)
    table = iceberg.table()
    assert files_per_day(table) == {JAN_1: 8, JAN_2: 8, JAN_3: 2}
    before, planned_on = all_rows(table), table.current_snapshot()
    assert planned_on is not None and planned_on.summary is not None
    positions = recorded_positions(table)[1]
    assert positions == {P0: Position(end + 10, 1)}

    result = compact(table, min_input_files=5)

    assert result.partitions == (JAN_1, JAN_2)
    assert (result.files_removed, result.files_added, result.rows) == (16, 2, 80)
    assert (result.attempts, result.gave_up) == (1, False)
    table = iceberg.table()
    assert files_per_day(table) == {JAN_1: 1, JAN_2: 1, JAN_3: 2}
    assert all_rows(table) == before  # the same rows, types and values
    current = table.current_snapshot()
    assert current is not None and current.summary is not None
    assert current.snapshot_id == result.snapshot_id
    assert current.parent_snapshot_id == planned_on.snapshot_id
    assert current.summary.operation == Operation.OVERWRITE
    for key in ("cdc.positions", "cdc.generation"):
        assert current.summary[key] == planned_on.summary[key]
    assert recorded_positions(table)[1] == positions
    assert all_rows(table, planned_on.snapshot_id) == before  # time travel still reads
    assert iceberg.orphans() == set()

    again = compact(table, min_input_files=5)
    assert (again.snapshot_id, again.files_removed) == (None, 0)


def test_a_writer_committing_between_plan_and_commit_loses_and_duplicates_nothing(
    iceberg: Any,
) -> None:
    writer = iceberg.writer()
    end = append_batches(writer, 8, days=1)
    table = iceberg.table()
    landed = []

    def writer_commits(plan: Any) -> None:
        if not landed:  # on the first plan only
            batch = changes(range(end, end + 15), quantity=2)
            landed.append(writer.append(ITEMS_CHANGES, batch, {P0: end + 15}, 1))

    result = compact(table, after_plan=writer_commits)

    # The plan still held on the writer's snapshot: committed there, on top of it.
    assert (result.attempts, result.files_removed, result.gave_up) == (1, 8, False)
    table = iceberg.table()
    current = table.current_snapshot()
    assert current is not None and current.snapshot_id == result.snapshot_id
    assert current.parent_snapshot_id == landed[0].snapshot_id
    assert offsets(table) == Counter(range(end + 15))  # every row exactly once
    assert recorded_positions(table)[1] == {P0: Position(end + 15, 1)}  # the writer's
    assert files_per_day(table) == {JAN_1: 2}  # the compacted file and the writer's
    assert iceberg.orphans() == set()


def test_a_commit_overtaken_inside_the_catalog_is_refused_and_planned_again(
    iceberg: Any,
) -> None:
    writer = iceberg.writer()
    end = append_batches(writer, 8, days=1)

    def writer_commits(n: int) -> None:
        if n == 1:  # the writer lands after the check, before the catalog applies the commit
            writer.append(ITEMS_CHANGES, changes(range(end, end + 15)), {P0: end + 15}, 1)

    catalog = InterleavingCatalog(
        iceberg.config.name, writer_commits, **iceberg.config.properties()
    )
    result = compact(catalog.load_table(("analytics", ITEMS_CHANGES)))

    # Refused once (pyiceberg's rebase never reached the catalog), then planned again on the
    # writer's snapshot with its file among the inputs.
    assert catalog.commits == 2
    assert (result.attempts, result.files_removed, result.files_added) == (2, 9, 1)
    table = iceberg.table()
    assert offsets(table) == Counter(range(end + 15))
    assert recorded_positions(table)[1] == {P0: Position(end + 15, 1)}
    assert files_per_day(table) == {JAN_1: 1}
    assert iceberg.orphans() == set()  # the refused attempt's file was deleted


def test_a_compaction_overtaken_every_time_gives_up_leaving_nothing(iceberg: Any) -> None:
    writer = iceberg.writer()
    end = append_batches(writer, 6, days=1)
    commits: list[int] = []

    def writer_commits(n: int) -> None:
        first = end + 5 * len(commits)
        writer.append(ITEMS_CHANGES, changes(range(first, first + 5)), {P0: first + 5}, 1)
        commits.append(n)

    catalog = InterleavingCatalog(
        iceberg.config.name, writer_commits, **iceberg.config.properties()
    )
    result = compact(catalog.load_table(("analytics", ITEMS_CHANGES)), max_attempts=3)

    assert (result.gave_up, result.attempts, result.snapshot_id) == (True, 3, None)
    assert catalog.commits == 3
    table = iceberg.table()
    assert Operation.OVERWRITE.value not in operations(table)
    assert offsets(table) == Counter(range(end + 15))
    assert recorded_positions(table)[1] == {P0: Position(end + 15, 1)}
    assert iceberg.orphans() == set()


def test_a_compaction_whose_files_were_replaced_meanwhile_plans_again(iceberg: Any) -> None:
    append_batches(iceberg.writer(), 6, days=1)
    first, other = iceberg.table(), iceberg.table()
    done = []

    def another_compaction(plan: Any) -> None:
        if not done:
            done.append(compact(other))

    before = all_rows(first)
    result = compact(first, after_plan=another_compaction)

    assert done[0].files_removed == 6
    # Its inputs were gone on the new head: its files deleted, planned again, nothing left.
    assert (result.snapshot_id, result.attempts, result.gave_up) == (None, 2, False)
    table = iceberg.table()
    assert operations(table).count(Operation.OVERWRITE.value) == 1
    assert all_rows(table) == before
    assert iceberg.orphans() == set()


def test_expiry_keeps_the_positions_chain_and_deletes_what_only_expired_snapshots_hold(
    iceberg: Any,
) -> None:
    writer = iceberg.writer()
    end = append_batches(writer, 6, days=1)
    table = iceberg.table()
    small_files = {task.file.file_path for task in table.scan().plan_files()}
    compact(table)
    writer.append(ITEMS_CHANGES, changes(range(end, end + 5)), {P0: end + 5}, 1)
    # Two snapshots of another tool on top, recording no positions.
    iceberg.table().append(changes(range(900, 903)))
    iceberg.table().append(changes(range(903, 905)))
    table = iceberg.table()
    history = table.snapshots()
    assert len(history) == 10  # 6 appends, the compaction, the writer's, the tool's two
    positions_snapshot = history[-3]
    rows = all_rows(table)

    # Only what is older than the cutoff goes: here the first four snapshots.
    cutoff = datetime.fromtimestamp(history[4].timestamp_ms / 1000, UTC)
    first = expire_snapshots(table, older_than=cutoff, retain_last=1)
    assert set(first.expired) == {s.snapshot_id for s in history[:4]}
    # The small files are still referenced by snapshots 5, 6 and the compaction's.
    assert first.files_deleted == len({s.manifest_list for s in history[:4]})

    result = expire_snapshots(table, older_than=datetime.now(UTC) + timedelta(hours=1))

    table = iceberg.table()
    # The current snapshot and the chain down to the positions (expiring the tool's first
    # snapshot would cut the ancestry the positions are read through).
    kept = [s.snapshot_id for s in table.snapshots()]
    assert kept == [s.snapshot_id for s in history[-3:]]
    assert result.positions_snapshot == positions_snapshot.snapshot_id
    assert recorded_positions(table)[1] == {P0: Position(end + 5, 1)}
    assert all_rows(table) == rows
    assert iceberg.orphans() == set()
    stored = _stored(iceberg, table)
    assert not small_files & stored  # only the expired snapshots referenced them
    assert not {s.manifest_list for s in history[:-3]} & stored
    assert result.files_deleted > len(small_files)  # their manifests and lists too


def _stored(iceberg: Any, table: Table) -> set[str]:
    prefix = table.metadata.location.removeprefix(f"s3://{iceberg.bucket}/")
    return {
        f"s3://{iceberg.bucket}/{obj['Key']}"
        for page in iceberg.s3.get_paginator("list_objects_v2").paginate(
            Bucket=iceberg.bucket, Prefix=prefix
        )
        for obj in page.get("Contents", [])
    }


def test_the_writer_goes_on_after_maintenance_with_its_positions(iceberg: Any) -> None:
    writer = iceberg.writer()
    end = append_batches(writer, 7)
    catalog = open_catalog(iceberg.config)
    later = datetime.now(UTC) + timedelta(hours=1)

    report = maintain(catalog, "analytics", older_than=timedelta(0), now=later)

    assert [t.table for t in report.tables] == [
        f"analytics.{ITEMS_CHANGES}",
        f"analytics.{ORDERS_CHANGES}",
    ]
    items, orders = report.tables
    assert (items.compaction.files_removed, items.compaction.files_added) == (14, 2)
    assert len(items.expiry.expired) == 7  # every append; the compaction is current
    assert orders.compaction.files_removed == 0 and orders.expiry.expired == ()
    assert report.gave_up == ()
    table = iceberg.table()
    assert len(table.snapshots()) == 1
    assert recorded_positions(table)[1] == {P0: Position(end, 1)}

    # A replay overlapping what is recorded, then new offsets: only the new rows are written.
    replay = writer.append(ITEMS_CHANGES, changes(range(end - 20, end + 10), 2), {P0: end + 10}, 1)
    assert (replay.written, replay.already_recorded) == (10, 20)
    assert writer.append(ITEMS_CHANGES, changes(range(end - 5, end)), {P0: end}, 1).duplicate
    table = iceberg.table()
    assert offsets(table) == Counter(range(end + 10))
    assert writer.positions(ITEMS_CHANGES) == {P0: Position(end + 10, 1)}
    assert iceberg.orphans() == set()


def test_cdc_lake_maintain_plans_with_dry_run_then_maintains(
    iceberg: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # No dev stack description where the command looks for one (it would use that lake).
    monkeypatch.chdir(tmp_path)
    writer = iceberg.writer()
    end = append_batches(writer, 6)
    root, lake = typer.Typer(), typer.Typer()
    add_commands(lake)
    root.add_typer(lake, name="lake")
    for variable in ("LAKE_CATALOG", "LAKE_CATALOG_URI", "LAKE_WAREHOUSE", "LAKE_NAMESPACE"):
        monkeypatch.delenv(variable, raising=False)
    catalog = [
        *("--catalog-uri", iceberg.config.uri, "--warehouse", iceberg.config.warehouse),
        *("--namespace", "analytics", "--older-than", "0s"),
    ]
    runner = CliRunner()
    env = dict(iceberg.aws_env)
    before = len(iceberg.table().snapshots())

    planned = runner.invoke(root, ["lake", "maintain", *catalog, "--dry-run"], env=env)

    assert planned.exit_code == 0, planned.output
    assert (
        f"analytics.{ITEMS_CHANGES}: would compact 12 files (60 rows) of {JAN_1}, {JAN_2} "
        "into 2 files"
    ) in planned.output
    assert f"analytics.{ITEMS_CHANGES}: would expire 5 snapshots, kept 1" in planned.output
    assert f"analytics.{ORDERS_CHANGES}: nothing to compact" in planned.output
    assert len(iceberg.table().snapshots()) == before  # nothing changed

    done = runner.invoke(root, ["lake", "maintain", *catalog, "--min-files", "7"], env=env)

    assert done.exit_code == 0, done.output
    assert f"analytics.{ITEMS_CHANGES}: nothing to compact" in done.output  # 6 files < 7
    assert f"analytics.{ITEMS_CHANGES}: expired 5 snapshots, kept 1" in done.output
    table = iceberg.table()
    assert files_per_day(table) == {JAN_1: 6, JAN_2: 6}
    assert recorded_positions(table)[1] == {P0: Position(end, 1)}

    done = runner.invoke(root, ["lake", "maintain", *catalog], env=env)
    assert done.exit_code == 0, done.output
    assert files_per_day(iceberg.table()) == {JAN_1: 1, JAN_2: 1}

    bad = runner.invoke(root, ["lake", "maintain", *catalog, "--older-than", "soon"], env=env)
    assert bad.exit_code == 2
    none = runner.invoke(root, ["lake", "maintain"], env=env)
    assert none.exit_code == 2
    assert "LAKE_CATALOG_URI" in none.output
