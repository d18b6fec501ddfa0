"""End to end with the real Debezium relay: the store holds every change exactly once, the
rebuilt state of every row equals the source table, and the CLI reads it back."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import typer
from devstack import (
    SOURCE_DATABASE,
    DebeziumRelay,
    ManagedProcess,
    PostgresServer,
    ShopSimulator,
    wait_until,
)
from devstack.pytest_plugin import SinkSchema
from devstack.truth import read_activity_log
from event_store_writer.cli import register
from prometheus_client.parser import text_string_to_metric_families
from sink_kit.postgres import make_engine
from sqlalchemy import text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

# Convergence after the simulator stops: the relay's last batches plus a group join (~3-6 s).
_CONVERGE_S = 90


def _converged(checks: Any, engine: Engine, source: PostgresServer) -> Callable[[], bool]:
    conn = source.connect(SOURCE_DATABASE)

    def check() -> bool:
        return not checks.state_diff(checks.store_state(engine), checks.source_state(conn))

    return check


def test_store_matches_the_source_and_the_relay(
    debezium_relay: DebeziumRelay,
    shop_simulator: ShopSimulator,
    source_postgres: PostgresServer,
    sink_schema: SinkSchema,
    kafka_bootstrap: str,
    activity_log: Path,
    start_writer: Callable[..., ManagedProcess],
    checks: Any,
) -> None:
    writer = start_writer()
    shop_simulator.run(duration=10)
    engine = make_engine(sink_schema.url)
    conn = source_postgres.connect(SOURCE_DATABASE)
    try:
        try:
            wait_until(_converged(checks, engine, source_postgres), _CONVERGE_S, interval=1.0)
        except TimeoutError:
            diff = checks.state_diff(checks.store_state(engine), checks.source_state(conn))
            raise AssertionError(f"store != source:\n{diff}\n{writer.log_tail()}") from None
        assert writer.running

        # One stored row per change the relay produced, and one per tombstone.
        def same_ids() -> bool:
            want_changes, want_tombs, _ = checks.expected_ids(kafka_bootstrap)
            have_changes, have_tombs = checks.stored_ids(engine)
            return set(have_changes) == want_changes and set(have_tombs) == want_tombs

        wait_until(same_ids, 30, interval=0.5, message="stored ids equal the relay's")
        have_changes, have_tombs = checks.stored_ids(engine)
        assert len(have_changes) == len(set(have_changes))
        assert len(have_tombs) == len(set(have_tombs))

        # Every acknowledged user event of the session, once.
        logged = {e["event_id"] for e in read_activity_log(activity_log)}

        def same_users() -> bool:
            with engine.connect() as c:
                stored = set(c.execute(text("SELECT event_id FROM user_events")).scalars())
            return stored == logged

        wait_until(same_users, 30, message="user_events equal the activity log")
        with engine.connect() as c:
            users = set(c.execute(text("SELECT user_id FROM users")).scalars())
        assert users == {e["user_id"] for e in read_activity_log(activity_log)}

        _check_metrics(writer)
        _check_cli(sink_schema, engine, conn)
    finally:
        conn.close()
        engine.dispose()


def _check_metrics(writer: ManagedProcess) -> None:
    """The writer's own counters are served on the runtime's /metrics."""
    log = re.sub(r"\x1b\[[0-9;]*m", "", writer.log_path.read_text(errors="replace"))
    ports = re.findall(r"health and metrics listening\s+port=(\d+)", log)
    assert ports, log[-2000:]
    with urllib.request.urlopen(f"http://127.0.0.1:{ports[-1]}/metrics", timeout=10) as resp:
        body = resp.read().decode()
    assert (
        'event_store_rows_appended_total{service="event-store-writer",table="cdc_events"}' in body
    )
    assert "cdc_messages_total" in body
    # The pool's use: its limit (DB_POOL_SIZE 5 + DB_MAX_OVERFLOW 5), and what is in use.
    pool = {
        s.name: s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.labels == {"service": "event-store-writer", "pool": "sink"}
    }
    assert pool["cdc_db_pool_size"] == 10
    assert 0 <= pool["cdc_db_pool_checked_out"] <= 10


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _check_cli(sink_schema: SinkSchema, engine: Engine, conn: Any) -> None:
    """``cdc history`` and ``cdc state`` against the source database."""
    runner = CliRunner()
    env = {"DATABASE_URL": sink_schema.url}
    with engine.connect() as c:
        busiest = c.execute(
            text(
                "SELECT (key->>'id')::int FROM cdc_events WHERE table_name = 'products' "
                "AND kind = 'change' GROUP BY key ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar_one()
        deleted = c.execute(
            text(
                "SELECT (key->>'id')::int FROM cdc_events WHERE table_name = 'products' "
                "AND op = 'd' LIMIT 1"
            )
        ).scalar()
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM products WHERE id = %s", (busiest,))
        names = [d[0] for d in cur.description]
        source_row = cur.fetchone()
    conn.rollback()

    from event_store_writer import normalise_row

    result = runner.invoke(_cli(), ["history", "products", str(busiest), "--json"], env=env)
    assert result.exit_code == 0, result.output
    events = orjson.loads(result.output)
    assert len(events) >= 2
    assert events[0]["op"] in ("r", "c")
    table = runner.invoke(_cli(), ["history", "public.products", str(busiest)], env=env)
    assert table.exit_code == 0, table.output
    assert "events" in table.output

    now = datetime.now(UTC).isoformat()
    result = runner.invoke(
        _cli(), ["state", "products", str(busiest), "--at", now, "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    state = orjson.loads(result.output)
    if source_row is None:
        assert state["exists"] is False
    else:
        assert state["row"] == normalise_row(dict(zip(names, source_row, strict=True)))

    # Before its first event the row did not exist.
    first = events[0]["source_ts"] or events[0]["event_time"]
    before = datetime.fromisoformat(first.replace("Z", "+00:00")).timestamp() - 1
    at = datetime.fromtimestamp(before, UTC).isoformat()
    result = runner.invoke(
        _cli(), ["state", "products", json_key(busiest), "--at", at, "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["exists"] is False

    if deleted is not None:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM products WHERE id = %s", (deleted,))
            in_source = cur.fetchone()[0] == 1
        conn.rollback()
        result = runner.invoke(_cli(), ["state", "products", str(deleted), "--json"], env=env)
        assert orjson.loads(result.output)["exists"] is in_source

    missing = runner.invoke(_cli(), ["history", "products", "999999999"], env=env)
    assert missing.exit_code == 1
    bad = runner.invoke(
        _cli(), ["history", "products", "1"], env={"DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}
    )
    assert bad.exit_code == 2
    assert "cannot reach the event store" in bad.output


def json_key(product_id: int) -> str:
    return orjson.dumps({"id": product_id}).decode()
