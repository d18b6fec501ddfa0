"""Exactly-once under faults: the writer is SIGKILLed and restarted repeatedly, and the sink
PostgreSQL stops answering for 15 s, while the simulator runs. At the end the store holds one
row per change the relay produced (no change missing, none doubled) and the rebuilt state of
every row equals the source table."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from devstack import (
    SOURCE_DATABASE,
    DebeziumRelay,
    ManagedProcess,
    PostgresServer,
    ShopSimulator,
    wait_until,
)
from devstack.pytest_plugin import SinkSchema
from sink_kit.postgres import make_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

# The outage: longer than the writer's connect timeout (5 s) and several retry rounds.
_OUTAGE_S = 15
# A restarted writer needs ~4 s to start and ~6 s to rejoin (the old member's session).
_PROGRESS_S = 60
_CONVERGE_S = 120


def _cut_connections(sink_postgres: PostgresServer) -> None:
    """Drop the writer's open connections: a paused postmaster alone leaves them working."""
    conn = sink_postgres.connect("sink")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'event-store-writer'"
        )
    conn.close()


def test_no_change_missing_none_doubled_across_kills_and_a_database_outage(
    debezium_relay: DebeziumRelay,
    shop_simulator: ShopSimulator,
    source_postgres: PostgresServer,
    sink_postgres: PostgresServer,
    sink_schema: SinkSchema,
    kafka_bootstrap: str,
    start_writer: Callable[..., ManagedProcess],
    checks: Any,
) -> None:
    engine = make_engine(sink_schema.url)
    writer = start_writer()
    sim = threading.Thread(target=shop_simulator.run)
    sim.start()
    kills = 0

    def stored() -> int:
        try:
            with engine.connect() as c:
                return int(c.execute(text("SELECT count(*) FROM cdc_event_ids")).scalar_one())
        except sa_exc.SQLAlchemyError:  # not migrated yet
            return 0

    def writing() -> None:
        """Wait until the current writer is appending (so a fault hits it mid-stream)."""
        base = stored()
        wait_until(lambda: stored() > base + 20, _PROGRESS_S, message="writer progress")

    try:
        # Crashes while batches are being written, each followed by a restart.
        for _ in range(3):
            writing()
            writer.kill()
            kills += 1
            writer = start_writer()
        # The sink database stops answering while the writer is busy.
        writing()
        _cut_connections(sink_postgres)
        sink_postgres.process.pause()
        try:
            time.sleep(_OUTAGE_S)
        finally:
            sink_postgres.process.resume()
        # And one more crash after the recovery.
        writing()
        writer.kill()
        kills += 1
        writer = start_writer()
        writing()
    finally:
        shop_simulator.stop()
        sim.join()
    assert kills == 4
    log = writer.log_path.read_text(errors="replace")
    assert "transient failure" in log, "the outage did not reach the writer"

    conn = source_postgres.connect(SOURCE_DATABASE)
    try:

        def converged() -> bool:
            store = checks.store_state(engine)
            return not checks.state_diff(store, checks.source_state(conn))

        try:
            wait_until(converged, _CONVERGE_S, interval=1.0)
        except TimeoutError:
            diff = checks.state_diff(checks.store_state(engine), checks.source_state(conn))
            raise AssertionError(f"store != source:\n{diff}\n{writer.log_tail()}") from None

        def complete() -> bool:
            want_changes, want_tombs, _ = checks.expected_ids(kafka_bootstrap)
            have_changes, have_tombs = checks.stored_ids(engine)
            return set(have_changes) == want_changes and set(have_tombs) == want_tombs

        wait_until(complete, 30, interval=0.5, message="stored ids equal the relay's")
        want_changes, want_tombs, _ = checks.expected_ids(kafka_bootstrap)
        have_changes, have_tombs = checks.stored_ids(engine)
        doubled = len(have_changes) - len(set(have_changes))
        assert doubled == 0, f"{doubled} changes stored twice"
        assert len(have_tombs) == len(set(have_tombs))
        assert set(have_changes) == want_changes
        assert set(have_tombs) == want_tombs
        print(
            f"{len(have_changes)} changes and "
            f"{len(have_tombs)} tombstones stored once each after {kills} kills and a "
            f"{_OUTAGE_S} s database outage"
        )
        assert writer.running
    finally:
        conn.close()
        engine.dispose()
