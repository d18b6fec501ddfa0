"""Replays into the Iceberg changes tables write every record once, on a real catalog and
warehouse: the same batch committed twice, a replay cut at other offsets after a crash (a new
generation), a batch that only moves the positions; the totals read back through DuckDB (over
the Arrow scan: DuckDB cannot load its Iceberg extension here) stay exact. And the positions a
writer resumes from are what a new process reads from the catalog.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import duckdb
import pyarrow as pa
from analytics_flusher.store._iceberg import ITEMS_CHANGES, ORDERS_CHANGES, Position
from consumer_runtime import TopicPartition

TOPIC = "dbserver1.public.order_items"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


def units(iceberg: Any) -> tuple[int, int]:
    """(lines, units) of the table by DuckDB, over the Arrow scan."""
    with duckdb.connect() as db:
        db.register("lines", iceberg.table().scan().to_arrow())
        ((lines, quantity),) = db.sql("SELECT count(*), sum(quantity) FROM lines").fetchall()
    return int(lines), int(quantity or 0)


def test_the_same_batch_committed_twice_is_written_once(iceberg: Any) -> None:
    writer = iceberg.writer()
    batch = iceberg.items(0, range(100), quantity=3)
    first = writer.append(ITEMS_CHANGES, batch, {P0: 100}, generation=1)
    again = writer.append(ITEMS_CHANGES, batch, {P0: 100}, generation=1)
    # And after a crash between the table commit and the Kafka offset commit, by the member
    # that took over (a new generation), from the last committed Kafka offset.
    after_crash = iceberg.writer().append(ITEMS_CHANGES, batch, {P0: 100}, generation=2)

    assert (first.written, first.duplicate) == (100, False)
    assert again.duplicate and again.written == 0 and again.already_recorded == 100
    assert after_crash.duplicate
    assert units(iceberg) == (100, 300)
    assert len(iceberg.table().snapshots()) == 1
    assert writer.positions(ITEMS_CHANGES) == {P0: Position(100, 1)}


def test_a_replay_cut_at_other_offsets_writes_only_what_is_missing(iceberg: Any) -> None:
    writer = iceberg.writer()
    writer.append(ITEMS_CHANGES, iceberg.items(0, range(60)), {P0: 60}, 1)
    writer.append(ITEMS_CHANGES, iceberg.items(0, range(60, 100)), {P0: 100}, 1)
    writer.append(ITEMS_CHANGES, iceberg.items(1, range(30)), {P1: 30}, 1)

    # The crash: Kafka had committed nothing. The successor reads both partitions from 0 and
    # cuts its batches elsewhere: one inside the recorded range, one across its end.
    successor = iceberg.writer()
    inside = successor.append(ITEMS_CHANGES, iceberg.items(0, range(80)), {P0: 80}, generation=2)
    batch = pa.concat_tables([iceberg.items(0, range(80, 130)), iceberg.items(1, range(45))])
    across = successor.append(ITEMS_CHANGES, batch, {P0: 130, P1: 45}, generation=2)

    assert inside.duplicate
    assert (across.written, across.already_recorded) == (30 + 15, 20 + 30)
    assert units(iceberg) == (130 + 45, 130 + 45)
    offsets = [(partition, offset) for partition, offset, _ in iceberg.rows()]
    assert offsets == [(0, o) for o in range(130)] + [(1, o) for o in range(45)]
    assert successor.positions(ITEMS_CHANGES) == {P0: Position(130, 2), P1: Position(45, 2)}


def test_a_batch_without_rows_moves_the_positions(iceberg: Any) -> None:
    # Records that make no row (tombstones, heartbeats, other tables) still move a partition's
    # position, so a restart does not read them again.
    writer = iceberg.writer()
    writer.append(ITEMS_CHANGES, iceberg.items(0, range(10)), {P0: 10}, 1)
    result = writer.append(ITEMS_CHANGES, iceberg.items(0, []), {P0: 25}, 1)

    assert result.written == 0 and not result.duplicate
    assert writer.positions(ITEMS_CHANGES) == {P0: Position(25, 1)}
    assert units(iceberg) == (10, 10)


def test_positions_are_what_a_new_process_reads_from_the_catalog(iceberg: Any) -> None:
    writer = iceberg.writer()
    writer.append(ITEMS_CHANGES, iceberg.items(0, range(12)), {P0: 12}, 4)
    writer.append(ITEMS_CHANGES, iceberg.items(1, range(7)), {P1: 7}, 5)

    script = (
        "import json, sys\n"
        "from analytics_flusher.store._iceberg import CatalogConfig, ExactlyOnceCommitter, "
        "open_catalog\n"
        "config = CatalogConfig.from_env(sys.argv[1], sys.argv[2])\n"
        "committer = ExactlyOnceCommitter(open_catalog(config), config.namespace)\n"
        "print(json.dumps({t: sorted([tp.topic, tp.partition, p.offset, p.generation]"
        " for tp, p in committer.positions(t).items()) for t in sys.argv[3:]}))\n"
    )
    # The child reads its S3 settings from its environment: the emulator's AWS_* variables.
    env = {**iceberg.aws_env, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            iceberg.config.uri,
            iceberg.config.warehouse,
            ITEMS_CHANGES,
            ORDERS_CHANGES,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        ITEMS_CHANGES: [[TOPIC, 0, 12, 4], [TOPIC, 1, 7, 5]],
        ORDERS_CHANGES: [],
    }
