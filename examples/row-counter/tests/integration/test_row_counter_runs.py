"""``python -m row_counter`` against the embedded broker and PostgreSQL: it counts, and a
restart resumes from the offsets stored with the counts (nothing counted twice)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from cdc_events.testing import make_change, make_tombstone
from devstack import ManagedProcess, free_port, produce, wait_until
from devstack.pytest_plugin import SinkSchema
from sink_kit.postgres import make_engine


def _counts(engine: sa.Engine) -> dict[str, int]:
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT table_name, changes FROM row_counts"))
            return {name: int(n) for name, n in rows}
    except sa.exc.ProgrammingError:  # not created yet
        return {}


def _records(table: str, n: int) -> list[tuple[bytes | None, bytes | None]]:
    out = []
    for i in range(n):
        r = make_change("c", table=table, key={"id": i}, after={"id": i}, lsn=1000 + i)
        out.append((r.key, r.value))
    return out


def test_it_counts_each_tables_changes_once_across_a_restart(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
    sink_schema: SinkSchema,
    unique_id: str,
    tmp_path: Path,
) -> None:
    orders = make_topic(name=f"dbserver1.public.orders_{unique_id}")
    items = make_topic(partitions=2, name=f"dbserver1.public.items_{unique_id}")
    produce(kafka_bootstrap, orders, _records(f"orders_{unique_id}", 5))
    tomb = make_tombstone({"id": 0}, table=f"orders_{unique_id}")
    produce(kafka_bootstrap, orders, [(tomb.key, None)])  # skipped, not counted
    produce(kafka_bootstrap, items, _records(f"items_{unique_id}", 7))

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DATABASE_"))},
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPICS": f"{orders},{items}",
        "KAFKA_GROUP_ID": kafka_group,
        "DATABASE_URL": sink_schema.url,
        "HEALTH_PORT": str(free_port()),
        "BATCH_MAX_WAIT_MS": "200",
        "KAFKA_CONSUMER_EXTRA": '{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}',
    }
    process = ManagedProcess(
        "row-counter", [sys.executable, "-m", "row_counter"], tmp_path / "row-counter.log", env=env
    )
    engine = make_engine(sink_schema.url)
    expected = {f"orders_{unique_id}": 5, f"items_{unique_id}": 7}
    try:
        process.start()
        wait_until(lambda: _counts(engine) == expected, 90, message="counts written")
        process.stop()

        produce(kafka_bootstrap, orders, _records(f"orders_{unique_id}", 2))
        process.env = {**env, "HEALTH_PORT": str(free_port())}
        process.start()
        expected[f"orders_{unique_id}"] = 7
        wait_until(lambda: _counts(engine) == expected, 90, message="counts after restart")
    except TimeoutError:
        print(process.log_tail(60))
        raise AssertionError(f"counts {_counts(engine)} != {expected}") from None
    finally:
        process.stop()
        engine.dispose()
