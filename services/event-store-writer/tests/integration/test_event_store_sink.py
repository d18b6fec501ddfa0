"""The sink on the real PostgreSQL, driven by the real loop over in-memory messages."""

from __future__ import annotations

import sqlalchemy as sa
from cdc_events.testing import golden, make_change, make_tombstone, make_transaction
from consumer_runtime import CommitStrategy, TopicPartition
from consumer_runtime.testing import SinkHarness
from event_store_writer import EventDecoder, EventStoreSink, StoreMetrics, _sql
from event_store_writer.domain import tombstone_id_after
from sqlalchemy.engine import Engine

SERVICE = "event-store-writer"


def _harness(sink: EventStoreSink) -> SinkHarness:  # type: ignore[type-arg]
    return SinkHarness(sink, EventDecoder(), strategy=CommitStrategy.SINK_MANAGED, service=SERVICE)


def _rows(engine: Engine, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_a_batch_lands_with_its_offsets_and_redeliveries_are_absorbed(
    store_engine: Engine, store_metrics: StoreMetrics
) -> None:
    names = [
        "pg-schema-products-c",
        "pg-schema-products-u",
        "pg-schema-products-d",
        "pg-schema-products-tombstone",
    ]
    records = [golden(n) for n in names]
    sink = EventStoreSink(store_engine, "g1", metrics=store_metrics)
    harness = _harness(sink)
    for rec in records:
        harness.produce(rec.topic, [rec.value], key=rec.key)
    tx = make_transaction("BEGIN", "900:1"), make_transaction("END", "900:5", collections={"a": 3})
    harness.produce(tx[0].topic, [t.value for t in tx], key=tx[0].key)
    harness.produce(
        "user-events",
        [
            b'{"event_id":"e1","user_id":"u1","event_type":"view",'
            b'"timestamp":"2024-01-01T00:00:00Z"}',
            b"\xff\xfe",
        ],
    )
    harness.run_until_idle()
    harness.shutdown()

    stored = _rows(store_engine, "SELECT kind, op, kafka_offset FROM cdc_events ORDER BY 3")
    assert stored == [
        ("change", "c", 0),
        ("change", "u", 1),
        ("change", "d", 2),
        ("tombstone", None, 3),
    ]
    assert _rows(store_engine, "SELECT count(*) FROM cdc_event_ids") == [(4,)]
    assert _rows(store_engine, "SELECT user_id FROM users") == [("u1",)]
    assert _rows(
        store_engine, "SELECT tx_id, begin_id, end_id, event_count FROM cdc_transactions"
    ) == [("900", "900:1", "900:5", 3)]
    dlq = _rows(
        store_engine,
        "SELECT topic, kafka_offset, value, error_code, status, retry_count FROM dead_letter_queue",
    )
    assert [(t, o, bytes(v), c, s, n) for t, o, v, c, s, n in dlq] == [
        ("user-events", 1, b"\xff\xfe", "bad_utf8", "new", 0)
    ]
    offsets = {
        (t, p): o
        for t, p, o in _rows(
            store_engine,
            "SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = 'g1'",
        )
    }
    assert offsets[(records[0].topic, 0)] == 4
    assert offsets[("user-events", 0)] == 2
    tp = TopicPartition(records[0].topic, 0)
    assert sink.stored_offsets([tp, TopicPartition("nope", 0)]) == {
        tp: 4,
        TopicPartition("nope", 0): 0,
    }

    # The same records again (a Debezium re-emit at new offsets, a redelivery to another
    # group): nothing new is stored, every one is counted as a duplicate.
    again = _harness(EventStoreSink(store_engine, "g2", metrics=store_metrics))
    for rec in records:
        again.produce(rec.topic, [rec.value], key=rec.key)
    again.produce(
        "user-events",
        [
            b'{"event_id":"e1","user_id":"u1","event_type":"view",'
            b'"timestamp":"2024-01-02T00:00:00Z"}'
        ],
    )
    again.run_until_idle()
    again.shutdown()
    assert _rows(store_engine, "SELECT count(*) FROM cdc_events") == [(4,)]
    assert _rows(store_engine, "SELECT count(*) FROM user_events") == [(1,)]
    dup = store_metrics.duplicates.labels(SERVICE, "cdc_events")._value.get()
    assert dup == 4
    assert store_metrics.duplicates.labels(SERVICE, "user_events")._value.get() == 1


def test_changes_of_old_months_get_their_partition_on_demand(
    store_sink: EventStoreSink, store_engine: Engine
) -> None:
    old = make_change(
        "r", after={"id": 1, "name": "x"}, source_ts_ms=1_262_304_000_000, snapshot="true"
    )  # 2010-01-01
    harness = _harness(store_sink)
    harness.produce(old.topic, [old.value], key=old.key)
    harness.run_until_idle()
    harness.shutdown()
    parts = _rows(
        store_engine,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c "
        "ON c.oid = i.inhrelid WHERE i.inhparent = 'cdc_events'::regclass",
    )
    assert ("cdc_events_y2010m01",) in parts
    assert _rows(store_engine, "SELECT snapshot, event_time::text FROM cdc_events_y2010m01") == [
        (True, "2010-01-01 00:00:00+00")
    ]


def test_a_tombstone_after_a_restart_finds_its_delete_in_the_store(
    store_engine: Engine, store_metrics: StoreMetrics
) -> None:
    delete = make_change("d", before={"id": 9}, lsn=777)
    tomb = make_tombstone({"id": 9})
    first = _harness(EventStoreSink(store_engine, "g", metrics=store_metrics))
    first.produce(delete.topic, [delete.value], key=delete.key)
    first.run_until_idle()
    first.shutdown()
    # A new process (fresh decoder) resumes at the tombstone.
    second = _harness(EventStoreSink(store_engine, "g", metrics=store_metrics))
    second.produce(delete.topic, [delete.value], key=delete.key)
    second.produce(tomb.topic, [tomb.value], key=tomb.key)
    second.consumer.committed[TopicPartition(delete.topic, 0)] = 1
    second.run_until_idle()
    second.shutdown()
    rows = _rows(store_engine, "SELECT event_id, kind, position FROM cdc_events ORDER BY kind")
    delete_id = rows[0][0]
    assert rows[1] == (tombstone_id_after(delete_id), "tombstone", 777)


def test_a_position_dead_lettered_again_keeps_the_operators_decision(store_engine: Engine) -> None:
    """A re-read of the same record (``cdc replay``, another group) refreshes the error but never
    reopens a row an operator replayed or discarded, so ``dlq replay --all`` cannot repeat it."""
    row = {
        "topic": "t",
        "partition": 0,
        "offset": 7,
        "key": None,
        "value": b"\xff",
        "headers": None,
        "error_type": "ParseError",
        "error_code": "bad_utf8",
        "error_message": "old message",
    }
    with store_engine.begin() as conn:
        conn.execute(sa.text(_sql.INSERT_DEAD_LETTER), row)
        conn.execute(sa.text("UPDATE dead_letter_queue SET status = 'discarded', retry_count = 1"))
        conn.execute(sa.text(_sql.INSERT_DEAD_LETTER), {**row, "error_message": "new message"})
    assert _rows(
        store_engine, "SELECT status, retry_count, error_message FROM dead_letter_queue"
    ) == [("discarded", 1, "new message")]
