"""Delivery guarantees across SIGKILL of the consumer process, against the embedded broker."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
from devstack import ManagedProcess, produce

N = 3000


def _kill_repeatedly(
    kit: Any,
    spawn: Callable[..., tuple[ManagedProcess, int]],
    progress: Callable[[], int],
    topic: str,
    group: str,
    kills: int,
    **env: str,
) -> ManagedProcess:
    for i in range(kills):
        proc, _ = spawn(f"consumer-{i}", topic, group, **env)
        before = progress()
        # Let it make some progress (it joins first), then crash it mid-batch.
        kit.wait_until(
            lambda b=before, p=proc: progress() >= b + 300 or not p.running,
            60,
            f"progress of consumer-{i}",
        )
        assert proc.running, proc.log_tail()
        proc.kill()
    proc, _ = spawn("consumer-final", topic, group, **env)
    return proc


def test_at_least_once_across_hard_kills(
    spawn_consumer: Callable[..., tuple[ManagedProcess, int]],
    make_topic: Callable[..., str],
    kafka_bootstrap: str,
    kafka_group: str,
    tmp_path: Path,
    kit: Any,
) -> None:
    topic = make_topic(3)
    produce(kafka_bootstrap, topic, kit.payloads(N))
    out = tmp_path / "sink.txt"
    env = {"SINK_KIND": "file", "SINK_PATH": str(out), "SINK_DELAY_S": "0.1", "BATCH_SIZE": "50"}
    final = _kill_repeatedly(
        kit, spawn_consumer, lambda: len(kit.file_ids(out)), topic, kafka_group, kills=2, **env
    )
    kit.wait_until(lambda: set(kit.file_ids(out)) >= set(range(N)), 90, "every record in the sink")
    assert final.stop(timeout=30) == 0, final.log_tail()
    ids = kit.file_ids(out)
    assert set(ids) == set(range(N))  # none skipped
    duplicates = len(ids) - N
    print(f"delivered {len(ids)} for {N} records ({duplicates} redelivered after kills)")


def test_sink_managed_is_exactly_once_across_hard_kills(
    spawn_consumer: Callable[..., tuple[ManagedProcess, int]],
    make_topic: Callable[..., str],
    kafka_bootstrap: str,
    kafka_group: str,
    sink_schema: Any,
    kit: Any,
) -> None:
    topic = make_topic(3)
    produce(kafka_bootstrap, topic, kit.payloads(N))
    conn = psycopg2.connect(sink_schema.dsn)
    conn.autocommit = True

    def rows() -> int:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('events') IS NOT NULL")
            row = cur.fetchone()
            if not row or not row[0]:
                return 0
            cur.execute("SELECT count(*) FROM events")
            count = cur.fetchone()
            return int(count[0]) if count else 0

    env = {
        "SINK_KIND": "pg",
        "SINK_DSN": sink_schema.dsn,
        "SINK_DELAY_S": "0.1",
        "BATCH_SIZE": "50",
    }
    final = _kill_repeatedly(kit, spawn_consumer, rows, topic, kafka_group, kills=2, **env)
    kit.wait_until(lambda: rows() >= N, 90, "every record in the sink")
    time.sleep(1.0)  # anything extra would be a duplicate: give it a moment to show up
    assert final.stop(timeout=30) == 0, final.log_tail()
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM events")
        ids = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT part, next_offset FROM offsets ORDER BY part")
        stored = dict(cur.fetchall())
    conn.close()
    dupes = {i: c for i, c in Counter(ids).items() if c > 1}
    assert not dupes, f"{len(dupes)} records written more than once"
    assert sorted(ids) == list(range(N))
    assert sum(stored.values()) == N
