"""The stack is real: row changes in the source database arrive from the real Debezium connector."""

from __future__ import annotations

import base64
from collections.abc import Callable

import orjson
from devstack import DebeziumRelay, PostgresServer, read_topic


def _payload(value: bytes | None) -> dict[str, object] | None:
    if value is None:
        return None
    doc = orjson.loads(value)
    assert set(doc) == {"schema", "payload"}, "schemas.enable=true: the Connect JSON envelope"
    payload = doc["payload"]
    assert isinstance(payload, dict)
    return payload


def test_insert_update_delete_arrive_as_c_u_d_and_tombstone(
    debezium_relay: DebeziumRelay,
    source_postgres: PostgresServer,
    source_table: Callable[[str], str],
    kafka_bootstrap: str,
) -> None:
    table = source_table("id integer PRIMARY KEY, name text NOT NULL, price numeric(10,2)")
    conn = source_postgres.connect("shop")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} VALUES (7, 'cup', 12.50)")
        cur.execute(f"UPDATE {table} SET name = 'mug' WHERE id = 7")
        cur.execute(f"DELETE FROM {table} WHERE id = 7")
    conn.close()

    topic = f"dbserver1.public.{table}"
    records = read_topic(kafka_bootstrap, topic, expected=4, timeout=30)
    assert [r.key for r in records] == [
        b'{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,"name":"dbserver1.public.%s.Key"},"payload":{"id":7}}'
        % table.encode()
    ] * 4
    ops = [None if r.value is None else _payload(r.value)["op"] for r in records]  # type: ignore[index]
    assert ops == ["c", "u", "d", None]
    created = _payload(records[0].value)
    assert created is not None
    # NUMERIC(10,2) 12.50 -> Connect Decimal: unscaled 1250 as big-endian bytes, base64.
    assert created["after"] == {
        "id": 7,
        "name": "cup",
        "price": base64.b64encode((1250).to_bytes(2, "big")).decode(),
    }
    updated = _payload(records[1].value)
    assert updated is not None and updated["after"]["name"] == "mug"  # type: ignore[index]
    # All four changes of one key land on one partition, in order.
    assert len({r.partition for r in records}) == 1
    assert [r.offset for r in records] == sorted(r.offset for r in records)
