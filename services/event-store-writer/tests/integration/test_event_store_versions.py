"""A row's history in version order, and sweeps, on the real PostgreSQL through the loop.

Ordered by LSN, a row's history is wrong twice over: the first transaction streamed after a
snapshot may have been open across the snapshot's point (its LSNs are below the snapshot's read
of the same row, although it is newer), and after Debezium lost its offsets and snapshotted
again, rows deleted meanwhile never get a delete. The store orders by ``cdc_events`` versions
and records each table's sweep (``cdc_sweeps``); the reader and the verifier apply it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from cdc_events.testing import KafkaRecord, make_change
from consumer_runtime import CommitStrategy
from consumer_runtime.testing import SinkHarness
from devstack.pytest_plugin import SinkSchema
from event_store_writer import EventDecoder, EventStoreSink, StoreMetrics
from event_store_writer.store import StoreReader
from event_store_writer.verify import store_state
from sqlalchemy.engine import Engine

SERVICE = "event-store-writer"
HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _harness(engine: Engine, metrics: StoreMetrics, group: str = "g") -> SinkHarness:  # type: ignore[type-arg]
    # Not pipelined: a batch is stored when the loop has handed it over (the state is read
    # between runs).
    sink = EventStoreSink(engine, group, metrics=metrics, pipelined=False)
    return SinkHarness(sink, EventDecoder(), strategy=CommitStrategy.SINK_MANAGED, service=SERVICE)


def _produce(harness: SinkHarness, records: list[KafkaRecord], partition: int = 0) -> None:  # type: ignore[type-arg]
    for rec in records:
        harness.produce(rec.topic, [rec.value], key=rec.key, partition=partition)


def _order(i: int, status: str, **extra: Any) -> dict[str, Any]:
    return {"id": i, "status": status, **extra}


def _rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_a_transaction_open_across_the_snapshot_point_is_newer_than_the_read(
    store_engine: Engine, store_metrics: StoreMetrics, sink_schema: SinkSchema
) -> None:
    # The snapshot reads order 7 at its point (LSN 5000); the first transaction streamed after
    # it had written order 7 before that point (LSN 4800) and committed after it.
    read = make_change(
        "r",
        table="orders",
        after=_order(7, "new"),
        lsn=5000,
        snapshot="last",
        source_ts_ms=T0,
    )
    update = make_change(
        "u",
        table="orders",
        before=_order(7, "new"),
        after=_order(7, "paid"),
        lsn=4800,
        sequence=(None, 4800),
        source_ts_ms=T0 + HOUR,
        offset=1,
    )
    harness = _harness(store_engine, store_metrics)
    _produce(harness, [read, update])
    harness.run_until_idle()
    harness.shutdown()

    reader = StoreReader(sink_schema.url)
    try:
        history = reader.history("orders", {"id": 7})
        assert [(e.op, e.lsn) for e in history] == [("r", 5000), ("u", 4800)]
        assert history[0].version is not None and history[1].version is not None
        assert history[0].version < history[1].version
        row, count = reader.state("orders", {"id": 7}, _at(T0 + 2 * HOUR))
        assert (row, count) == (_order(7, "paid"), 2)
        # Before the update committed, the snapshot's read is the row.
        assert reader.state("orders", {"id": 7}, _at(T0 + 1))[0] == _order(7, "new")
    finally:
        reader.close()
    assert store_state(store_engine)[("orders", '{"id":7}')] == _order(7, "paid")


def _snapshot(
    rows: list[dict[str, Any]], lsn: int, ts_ms: int, *, offset: int = 0
) -> list[KafkaRecord]:
    """The reads of one snapshot of ``orders``: the first, the middle ones, the last."""
    out = []
    for i, row in enumerate(rows):
        marker = "first" if i == 0 else "last" if i == len(rows) - 1 else "true"
        out.append(
            make_change(
                "r",
                table="orders",
                after=row,
                lsn=lsn,
                snapshot=marker,
                source_ts_ms=ts_ms + i,
                offset=offset + i,
            )
        )
    return out


def _update(row: dict[str, Any], commit: int | None, lsn: int, ts_ms: int) -> KafkaRecord:
    return make_change(
        "u",
        table="orders",
        after=row,
        lsn=lsn,
        sequence=(commit, lsn),
        source_ts_ms=ts_ms,
    )


def test_a_re_snapshot_sweeps_the_rows_it_did_not_read(
    store_engine: Engine, store_metrics: StoreMetrics, sink_schema: SinkSchema
) -> None:
    t1, t2, t3, t4 = T0, T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR
    # Generation 1: a snapshot at LSN 1000 reads orders 1-4, then changes are streamed.
    gen1 = [
        *_snapshot([_order(i, "new") for i in (1, 2, 3, 4)], 1000, t1),
        _update(_order(1, "paid"), None, 1100, t2),
        _update(_order(2, "paid"), 1100, 1200, t2 + 1),
        _update(_order(3, "paid"), 1200, 1300, t2 + 2),
    ]
    # The relay loses its offsets; meanwhile order 3 is deleted and order 2 shipped (no events).
    # Generation 2: a snapshot at LSN 5000 reads orders 1, 2 and 4 (its last read carries the
    # sweep); order 3 is not read: it is gone. Then order 1 changes and order 5 is created.
    snap2 = _snapshot([_order(1, "paid"), _order(2, "shipped"), _order(4, "new")], 5000, t3)
    gen2 = [
        *snap2,
        _update(_order(1, "closed"), None, 5100, t4),
        make_change(
            "c",
            table="orders",
            after=_order(5, "new"),
            sequence=(5100, 5200),
            lsn=5200,
            source_ts_ms=t4 + 1,
        ),
    ]
    harness = _harness(store_engine, store_metrics)
    _produce(harness, [*gen1, *gen2])
    harness.run_until_idle()

    expected = {
        1: _order(1, "closed"),
        2: _order(2, "shipped"),
        4: _order(4, "new"),
        5: _order(5, "new"),
    }
    state = store_state(store_engine)
    assert {k: v for k, v in state.items() if k[0] == "orders"} == {
        ("orders", f'{{"id":{i}}}'): row for i, row in expected.items()
    }
    reader = StoreReader(sink_schema.url)
    try:
        now = _at(t4 + HOUR)
        for i in (1, 2, 3, 4, 5):
            assert reader.state("orders", {"id": i}, now)[0] == expected.get(i), i
        # The history of the swept row is unchanged: it is what the store received.
        assert [e.op for e in reader.history("orders", {"id": 3})] == ["r", "u"]
        # State at a time applies the sweeps recorded by then: before the second snapshot's
        # last read, order 3 still had its streamed state.
        assert reader.state("orders", {"id": 3}, _at(t3))[0] == _order(3, "paid")
        assert reader.state("orders", {"id": 3}, _at(t3 + 2))[0] is None
    finally:
        reader.close()
    sweeps = _rows(store_engine, "SELECT table_name, sweep_version, kafka_offset FROM cdc_sweeps")
    assert sorted(sweeps) == [
        ("orders", "q" + "1000".zfill(20) + "0" + "0" * 40, 3),
        ("orders", "q" + "5000".zfill(20) + "0" + "0" * 40, 9),
    ]

    # A redelivery of the marker (a Debezium re-emit at a new offset) and a second consumer
    # group reading everything again: no new sweep, no new event, the same state.
    marker = snap2[-1]
    _produce(harness, [marker])
    harness.run_until_idle()
    harness.shutdown()
    again = _harness(store_engine, store_metrics, group="g2")
    _produce(again, [*gen1, *gen2])
    again.run_until_idle()
    again.shutdown()
    assert sorted(
        _rows(store_engine, "SELECT table_name, sweep_version, kafka_offset FROM cdc_sweeps")
    ) == sorted(sweeps)
    assert _rows(store_engine, "SELECT count(*) FROM cdc_events") == [(len(gen1) + len(gen2),)]
    assert store_state(store_engine) == state


def test_a_read_consumed_after_the_sweep_brings_its_row_back(
    store_engine: Engine, store_metrics: StoreMetrics, sink_schema: SinkSchema
) -> None:
    # Partition 1 carries order 6; the second snapshot's last read (the sweep) is consumed from
    # partition 0 before partition 1's read of order 6: the row looks swept until it arrives.
    first = _snapshot([_order(1, "new"), _order(6, "new")], 1000, T0)
    harness = _harness(store_engine, store_metrics)
    _produce(harness, first[:1])
    _produce(harness, first[1:], partition=1)
    second = _snapshot([_order(6, "new"), _order(1, "new")], 5000, T0 + HOUR)
    _produce(harness, second[1:])
    harness.run_until_idle()
    assert ("orders", '{"id":6}') not in store_state(store_engine)
    _produce(harness, second[:1], partition=1)
    harness.run_until_idle()
    harness.shutdown()
    assert store_state(store_engine)[("orders", '{"id":6}')] == _order(6, "new")


def test_events_stored_before_versions_come_first_by_position_and_are_swept(
    store_engine: Engine, store_metrics: StoreMetrics, sink_schema: SinkSchema
) -> None:
    # Generation 1 stored before migration 0004 (no version): orders 8 and 9 read at LSN 1000,
    # order 9 updated at LSN 4900. Then a snapshot at LSN 5000 reads order 9 only (order 8 was
    # deleted meanwhile), and a transaction open across its point updates order 9 at LSN 4800.
    old = [
        *_snapshot([_order(8, "new"), _order(9, "new")], 1000, T0),
        _update(_order(9, "paid"), 1000, 4900, T0 + HOUR),
    ]
    harness = _harness(store_engine, store_metrics)
    _produce(harness, old)
    harness.run_until_idle()
    with store_engine.begin() as conn:
        conn.execute(sa.text("UPDATE cdc_events SET version = NULL"))
        conn.execute(sa.text("DELETE FROM cdc_sweeps"))
    new = [
        make_change(
            "r",
            table="orders",
            after=_order(9, "paid"),
            lsn=5000,
            snapshot="last",  # the table's last read: it carries the sweep
            source_ts_ms=T0 + 2 * HOUR,
        ),
        _update(_order(9, "shipped"), None, 4800, T0 + 3 * HOUR),
    ]
    _produce(harness, new)
    harness.run_until_idle()
    harness.shutdown()

    reader = StoreReader(sink_schema.url)
    try:
        history = reader.history("orders", {"id": 9})
        assert [(e.op, e.lsn, e.version is None) for e in history] == [
            ("r", 1000, True),
            ("u", 4900, True),
            ("r", 5000, False),
            ("u", 4800, False),
        ]
        now = _at(T0 + 4 * HOUR)
        assert reader.state("orders", {"id": 9}, now)[0] == _order(9, "shipped")
        assert reader.state("orders", {"id": 8}, now)[0] is None
        assert reader.state("orders", {"id": 8}, _at(T0 + HOUR))[0] == _order(8, "new")
    finally:
        reader.close()
    state = store_state(store_engine)
    assert {k: v for k, v in state.items() if k[0] == "orders"} == {
        ("orders", '{"id":9}'): _order(9, "shipped")
    }
