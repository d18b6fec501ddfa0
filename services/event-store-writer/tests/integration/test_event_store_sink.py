"""The sink on the real PostgreSQL, driven by the real loop over in-memory messages."""

from __future__ import annotations

import time

import orjson
import sqlalchemy as sa
from cdc_events.testing import golden, make_change, make_tombstone, make_transaction
from consumer_runtime import CommitStrategy, TopicPartition
from consumer_runtime.testing import SinkHarness
from devstack.pytest_plugin import SinkSchema
from event_store_writer import EventDecoder, EventStoreSink, StoreMetrics
from event_store_writer.domain import tombstone_id_after
from event_store_writer.store import _sql
from sink_kit.postgres import make_engine
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


def _user_event(i: int, user: str = "u") -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{i}",
            "user_id": user,
            "event_type": "view",
            "timestamp": "2024-01-01T00:00:00Z",
        }
    )


def test_a_record_the_store_refuses_is_dead_lettered_and_the_rest_stored(
    store_engine: Engine, store_metrics: StoreMetrics
) -> None:
    # A NUL character parses (JSON allows it) but PostgreSQL's text and jsonb cannot hold it.
    # The writer pipelines its writes, so the refusal surfaces one batch late: the runtime
    # isolates that batch, dead-letters the record with PostgreSQL's reason and goes on.
    nul = make_change("c", after={"id": 2, "name": "bad\x00name"})
    good = [make_change("c", after={"id": i, "name": f"p{i}"}) for i in (1, 3, 4, 5)]
    sink = EventStoreSink(store_engine, "g-refuse", metrics=store_metrics)
    harness = SinkHarness(
        sink, EventDecoder(), strategy=CommitStrategy.SINK_MANAGED, service=SERVICE, batch_size=2
    )
    for rec in [good[0], nul, *good[1:]]:
        harness.produce(rec.topic, [rec.value], key=rec.key)
    harness.produce("user-events", [_user_event(1), _user_event(2, "nul\x00user"), _user_event(3)])
    harness.run_until_idle()
    harness.shutdown()

    ids = _rows(store_engine, "SELECT after->>'id' FROM cdc_events ORDER BY 1")
    assert ids == [("1",), ("3",), ("4",), ("5",)]
    assert _rows(store_engine, "SELECT event_id FROM user_events ORDER BY 1") == [
        ("e1",),
        ("e3",),
    ]
    dead = {(d.topic, d.offset): d for d in harness.dead_letters}
    assert set(dead) == {(nul.topic, 1), ("user-events", 1)}
    for letter in dead.values():
        assert letter.code == "store_rejected"
        assert "PostgreSQL" in letter.message
        assert letter.exception_class.startswith("psycopg2.errors.")
    assert dead[nul.topic, 1].value == nul.value
    # The DLQ table keeps them too, and the stored offsets reach the end of both topics.
    assert _rows(
        store_engine, "SELECT topic, kafka_offset, error_code FROM dead_letter_queue ORDER BY 1"
    ) == [(nul.topic, 1, "store_rejected"), ("user-events", 1, "store_rejected")]
    offsets = _rows(
        store_engine,
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE group_id = 'g-refuse'",
    )
    assert {(t, p): o for t, p, o in offsets} == {(nul.topic, 0): 5, ("user-events", 0): 3}


def test_a_failed_background_write_is_retried_on_the_tick_without_new_records(
    store_engine: Engine, sink_schema: SinkSchema, store_metrics: StoreMetrics
) -> None:
    # The writer's statements time out while another session holds the table: a transient
    # failure of the background write. The stream then goes quiet; the runtime's tick must
    # write the batch again, and lag (the commit) must not claim it before it is stored.
    quick = make_engine(sink_schema.url, statement_timeout_ms=300)
    sink = EventStoreSink(quick, "g-tick", metrics=store_metrics)
    harness = SinkHarness(
        sink, EventDecoder(), strategy=CommitStrategy.SINK_MANAGED, service=SERVICE
    )
    tp = TopicPartition("user-events", 0)
    harness.produce("user-events", [_user_event(1)])
    with store_engine.connect() as blocker:
        blocker.execute(sa.text("LOCK TABLE user_events IN ACCESS EXCLUSIVE MODE"))
        harness.run_until_idle()  # handed to the background write, which times out
        time.sleep(0.6)
        harness.tick()  # the failure is noticed; the retry times out again (still locked)
        assert harness.committed.get(tp, 0) == 0
        blocker.rollback()
    harness.tick()  # no new records: the tick alone writes the batch now
    assert _rows(store_engine, "SELECT event_id FROM user_events") == [("e1",)]
    harness.tick()
    assert harness.committed == {tp: 1}
    harness.shutdown()


def test_a_quiet_stream_s_last_batch_is_reported_by_the_next_poll_not_the_clock(
    store_engine: Engine, store_metrics: StoreMetrics
) -> None:
    # The harness never ticks by the clock: the poll that brings nothing new reports the
    # background write as soon as it committed (the service's tick is a second apart).
    sink = EventStoreSink(store_engine, "g-quiet", metrics=store_metrics)
    harness = _harness(sink)
    tp = TopicPartition("user-events", 0)
    harness.produce("user-events", [_user_event(1)])
    assert harness.poll() == 1  # handed to the background write
    deadline = time.monotonic() + 10
    while harness.committed.get(tp) != 1:  # polls that bring nothing new, until reported
        assert time.monotonic() < deadline, "the finished write was never reported"
        assert harness.poll() == 0
        time.sleep(0.01)
    assert _rows(store_engine, "SELECT event_id FROM user_events") == [("e1",)]
    harness.shutdown()


def test_a_zombie_cannot_overwrite_its_successors_work_nor_move_offsets_back(
    store_engine: Engine, store_metrics: StoreMetrics
) -> None:
    # A stalls past its session timeout with a batch not yet written; B is assigned the
    # partition, claims it and writes on. When A wakes up its write is refused as a whole
    # (FencedError, retried while paused), then A learns the partition is lost and the batch
    # sheds it: nothing of A's lands, and the stored offsets stay B's (without the fence, A
    # would store 4 over B's 6).
    tp = TopicPartition("user-events", 0)
    a_sink = EventStoreSink(store_engine, "g-zombie", metrics=store_metrics, pipelined=False)
    b_sink = EventStoreSink(store_engine, "g-zombie", metrics=store_metrics, pipelined=False)
    a = SinkHarness(a_sink, EventDecoder(), strategy=CommitStrategy.SINK_MANAGED, service=SERVICE)
    b = SinkHarness(b_sink, EventDecoder(), strategy=CommitStrategy.SINK_MANAGED, service=SERVICE)
    events = [_user_event(i) for i in range(6)]
    a.produce("user-events", events[:2])
    a.run_until_idle()  # A owns the partition and stored 2
    a.produce("user-events", events[2:4])  # A will fetch these after its stall
    b.produce("user-events", events)  # the same log, as B sees it
    b.run_until_idle()  # B took the partition over: claimed it (from 2) and wrote up to 6
    original = a.loop._sleep_polling
    retries: list[float] = []

    def lost_while_retrying(seconds: float) -> None:
        retries.append(seconds)
        a.consumer.lose([tp])  # A's consumer learns of the rebalance on its next poll
        original(seconds)

    a.loop._sleep_polling = lost_while_retrying  # type: ignore[method-assign]
    a.poll()  # A wakes up and writes 2..4: fenced, retried, and the partition is lost
    assert retries, "the zombie's write was not refused"
    ids = _rows(store_engine, "SELECT event_id FROM user_events ORDER BY 1")
    assert ids == [(f"e{i}",) for i in range(6)]
    offsets = _rows(
        store_engine, "SELECT next_offset FROM consumer_offsets WHERE group_id = 'g-zombie'"
    )
    assert offsets == [(6,)]
    assert a.loop.assignment == set()
    assert a.committed == {tp: 2}  # nothing committed for the lost partition
    b.shutdown()
