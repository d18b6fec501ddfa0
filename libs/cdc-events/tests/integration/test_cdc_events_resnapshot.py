"""Versions and sweeps across a re-snapshot, with the real connector.

Debezium streams a table, loses its offsets (killed, offsets file deleted: what a lost offsets
topic or ``snapshot.mode=always`` does) while rows are updated, deleted and inserted, and a
transaction that had already written commits only after the new snapshot's point. A reference
read model that keeps, per key, the row of the highest ``cdc_events`` version (``Versions``, one
per consumer) and applies each table's sweep (``sweep_version``: rows below it are deleted, and
nothing below it is applied afterwards) must then equal the table, whatever order its
partitions are consumed in. Without generations the new snapshot's reads lost to the older
streamed changes, and the rows deleted while the relay had no offsets stayed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cdc_events import ChangeEvent, Versions, parse_record, snapshot_point_of, sweep_version
from devstack import DebeziumRelay, PostgresServer, Record, read_topic

pytestmark = pytest.mark.integration

ROWS = 30


class ReadModel:
    """The rule every version-guarded sink follows, on a dict."""

    def __init__(self, sweeps: bool = True) -> None:
        self.sweeps = sweeps
        self.rows: dict[int, tuple[str, dict[str, Any] | None]] = {}
        self.floor = ""  # the highest sweep seen: nothing below it is applied
        self.swept = 0

    def apply(self, event: ChangeEvent, version: str) -> None:
        key = int(event.key["id"]) if event.key else int((event.after or {})["id"])
        stored = self.rows.get(key)
        if version > self.floor and (stored is None or version > stored[0]):
            self.rows[key] = (version, None if event.op == "d" else dict(event.after or {}))
        sweep = sweep_version(event) if self.sweeps else None
        if sweep is not None and sweep > self.floor:
            self.floor = sweep
            for k, (v, row) in list(self.rows.items()):
                if v < sweep and row is not None:
                    self.rows[k] = (sweep, None)
                    self.swept += 1

    def live(self) -> dict[int, dict[str, Any]]:
        return {k: row for k, (_, row) in self.rows.items() if row is not None}


@pytest.fixture
def table(source_postgres: PostgresServer, unique_id: str) -> Iterator[str]:
    name = f"rs_{unique_id}"
    conn = source_postgres.connect("shop")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE public.{name} (id int PRIMARY KEY, name text, qty int)")
        cur.execute(
            f"INSERT INTO public.{name} SELECT i, 'row ' || i, i FROM generate_series(1, {ROWS}) i"
        )
    yield name
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS public.{name}")
    conn.close()


@pytest.fixture
def relay(
    tmp_path: Path, kafka_bootstrap: str, source_postgres: PostgresServer, table: str
) -> Iterator[DebeziumRelay]:
    relay = DebeziumRelay.create(
        tmp_path / "relay",
        bootstrap_servers=kafka_bootstrap,
        db_port=source_postgres.port,
        db_name="shop",
        topic_prefix=table,
        table_include_list=f"public.{table}",
        slot_name=f"{table}_slot",
        publication_name=f"{table}_pub",
        schemas_enable=False,
    )
    yield relay
    relay.kill()
    conn = source_postgres.connect("shop")
    conn.autocommit = True
    with conn.cursor() as cur:
        for _ in range(50):  # the slot stays active for a moment after the kill
            cur.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (f"{table}_slot",)
            )
            row = cur.fetchone()
            if row is None or not row[0]:
                break
            time.sleep(0.2)
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s",
            (f"{table}_slot",),
        )
        cur.execute(f"DROP PUBLICATION IF EXISTS {table}_pub")
    conn.close()


def _execute(source: PostgresServer, *statements: str) -> None:
    conn = source.connect("shop")
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        conn.commit()
    finally:
        conn.close()


def _settle(bootstrap: str, topic: str, produced: int) -> list[Record]:
    deadline = time.monotonic() + 60
    while True:
        records = read_topic(bootstrap, topic, timeout=30, idle=2)
        if len(records) >= produced or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def test_a_re_snapshot_leaves_every_read_model_equal_to_the_source(
    relay: DebeziumRelay, source_postgres: PostgresServer, kafka_bootstrap: str, table: str
) -> None:
    topic = f"{table}.public.{table}"
    t = f"public.{table}"
    relay.start()  # the first snapshot: rows 1-30
    relay.wait_produced(topic, ROWS)
    _execute(source_postgres, f"UPDATE {t} SET qty = qty + 100 WHERE id <= 5")
    _execute(source_postgres, f"DELETE FROM {t} WHERE id BETWEEN 6 AND 8")
    _execute(
        source_postgres, f"INSERT INTO {t} SELECT i, 'new ' || i, i FROM generate_series(31, 35) i"
    )
    relay.wait_produced(topic, ROWS + 5 + 3 + 5)

    # A transaction writes, and stays open across the next snapshot's point.
    open_tx = source_postgres.connect("shop")
    with open_tx.cursor() as cur:
        cur.execute(f"UPDATE {t} SET name = 'open across' WHERE id = 10")
        cur.execute(f"INSERT INTO {t} VALUES (99, 'open across', 99)")

    # The relay loses its offsets; while it is down rows change, go, and come.
    relay.kill()
    relay.config.offsets_file.unlink()
    _execute(source_postgres, f"UPDATE {t} SET qty = -1 WHERE id BETWEEN 11 AND 15")
    _execute(source_postgres, f"UPDATE {t} SET qty = -2 WHERE id IN (3, 4)")  # streamed before
    _execute(source_postgres, f"DELETE FROM {t} WHERE id BETWEEN 16 AND 20")
    _execute(source_postgres, f"DELETE FROM {t} WHERE id = 33")
    _execute(
        source_postgres, f"INSERT INTO {t} SELECT i, 'gap ' || i, i FROM generate_series(36, 40) i"
    )
    relay.start()  # the second snapshot, then streaming
    open_tx.commit()
    open_tx.close()
    _execute(source_postgres, f"UPDATE {t} SET qty = 7 WHERE id IN (1, 11, 36)")
    _execute(source_postgres, f"DELETE FROM {t} WHERE id = 2")

    conn = source_postgres.connect("shop")
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, name, qty FROM {t}")
        truth = {i: {"id": i, "name": n, "qty": q} for i, n, q in cur.fetchall()}
    conn.close()
    produced = relay.status().get("produced", {}).get(topic, 0)
    records = _settle(kafka_bootstrap, topic, produced)
    events = [
        e
        for r in records
        if isinstance(
            e := parse_record(r.topic, r.partition, r.offset, r.key, r.value, list(r.headers)),
            ChangeEvent,
        )
    ]
    by_partition: dict[int, list[ChangeEvent]] = {}
    for e in sorted(events, key=lambda e: (e.partition, e.offset)):
        by_partition.setdefault(e.partition, []).append(e)
    assert len(by_partition) > 1

    # The scenario is the one the rule exists for: two snapshots, each table's last read marks a
    # sweep, and the transaction open across the second point is the first streamed after it
    # (no commit key) with LSNs below that point.
    points = sorted({p for e in events if (p := snapshot_point_of(e)) is not None})
    assert len(points) == 2
    assert sum(sweep_version(e) is not None for e in events) == 2
    open_changes = [
        e for e in events if e.op != "r" and (e.after or {}).get("name") == "open across"
    ]
    assert len(open_changes) == 2
    assert all(e.source.commit_lsn is None for e in open_changes)
    assert all(e.source.lsn is not None and e.source.lsn < points[1] for e in open_changes)

    # Rows 3 and 4 changed while the relay had no offsets, after changes streamed before: the new
    # snapshot's read is their newest change (under the rule before generations every streamed
    # change outranked every read, and the read models kept qty 103 and 104).
    for key in (3, 4):
        changes = [e for e in events if e.key == {"id": key}]
        newest = max(changes, key=lambda e: Versions().of(e))
        assert newest.op == "r" and (newest.after or {})["qty"] == -2
        assert any(e.op == "u" and e.source.lsn < newest.source.lsn for e in changes)

    # Every order of consuming the partitions (each in its own order, one after another)
    # gives the source's rows.
    for order in itertools.permutations(sorted(by_partition)):
        model, versions = ReadModel(), Versions()
        for partition in order:
            for event in by_partition[partition]:
                model.apply(event, versions.of(event))
        assert model.live() == truth, order
    # Interleaved record by record too (the usual case).
    model, versions = ReadModel(), Versions()
    for event in _round_robin(by_partition):
        model.apply(event, versions.of(event))
    assert model.live() == truth
    assert model.swept > 0
    # Without the sweeps the rows deleted while the relay had no offsets stay.
    unswept, versions = ReadModel(sweeps=False), Versions()
    for event in _round_robin(by_partition):
        unswept.apply(event, versions.of(event))
    assert sorted(set(unswept.live()) - set(truth)) == [16, 17, 18, 19, 20, 33]


def _round_robin(by_partition: dict[int, list[ChangeEvent]]) -> Iterator[ChangeEvent]:
    queues = [iter(v) for v in by_partition.values()]
    while queues:
        for q in list(queues):
            event = next(q, None)
            if event is None:
                queues.remove(q)
            else:
                yield event
