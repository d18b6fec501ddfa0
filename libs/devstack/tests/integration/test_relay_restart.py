"""A relay restart resumes from Debezium's stored offsets instead of taking a new snapshot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from devstack import DebeziumRelay, PostgresServer, op_of, read_topic


def test_restart_resumes_streaming_without_a_new_snapshot(
    debezium_relay: DebeziumRelay,
    source_postgres: PostgresServer,
    source_table: Callable[[str], str],
    kafka_bootstrap: str,
) -> None:
    table = source_table("id integer PRIMARY KEY, v text")
    topic = f"dbserver1.public.{table}"
    conn = source_postgres.connect("shop")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} VALUES (1, 'before restart')")
    assert len(read_topic(kafka_bootstrap, topic, expected=1, timeout=30)) == 1

    debezium_relay.stop()
    with conn.cursor() as cur:  # committed while the connector is down: must not be lost
        cur.execute(f"INSERT INTO {table} VALUES (2, 'while down')")
    debezium_relay.start()
    with conn.cursor() as cur:
        cur.execute(f"UPDATE {table} SET v = 'after restart' WHERE id = 1")
    conn.close()

    records = read_topic(kafka_bootstrap, topic, expected=3, timeout=60)
    ops = Counter(op_of(r.value) for r in records)
    assert ops == Counter(c=2, u=1), "resumed from the stored offset: no 'r' re-snapshot"
    # A new snapshot would have re-read every shop table; the restarted relay produced none.
    assert debezium_relay.status()["produced"].get("dbserver1.public.products", 0) == 0
