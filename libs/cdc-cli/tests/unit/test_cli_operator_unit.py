"""Pure parts of `cdc status`, `cdc offsets` and `cdc replay`: targets, plans, the stack
description, option parsing, rendering, and the service catalogue against the services."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from cdc_cli import app
from cdc_cli._catalogue import catalogue, service
from cdc_cli._connect import CliError, connect, load_stack, parse_group_urls, redact
from cdc_cli._plan import PlanRow, ResetTarget, TargetKind, build_plan, to_millis
from cdc_cli._status import GroupStatus, PartitionStatus, render
from consumer_runtime import (
    CommitStrategy,
    GroupDescription,
    GroupMember,
    GroupState,
    TopicPartition,
    Watermarks,
)
from typer.testing import CliRunner

T0, T1 = TopicPartition("orders", 0), TopicPartition("orders", 1)


@pytest.fixture(autouse=True)
def _no_stack_no_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No `.devstack/latest/stack.json` of a running `make up` and no bootstrap variable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


# -- targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("earliest", ResetTarget(TargetKind.EARLIEST)),
        ("LATEST", ResetTarget(TargetKind.LATEST)),
        ("42", ResetTarget(TargetKind.OFFSET, offset=42)),
        (
            "2026-11-21T12:00:00Z",
            ResetTarget(
                TargetKind.TIME, timestamp_ms=to_millis(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
            ),
        ),
        # Without a zone: UTC. A date alone: its midnight.
        ("2026-11-21T12:00:00", ResetTarget(TargetKind.TIME, timestamp_ms=1795262400000)),
        ("2026-11-21", ResetTarget(TargetKind.TIME, timestamp_ms=1795219200000)),
        ("2026-11-21T13:00:00+01:00", ResetTarget(TargetKind.TIME, timestamp_ms=1795262400000)),
    ],
)
def test_reset_targets(text: str, expected: ResetTarget) -> None:
    assert ResetTarget.parse(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "-5", "12:00", "2026-13-01"])
def test_bad_targets_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="earliest, latest, an offset or an ISO-8601 time"):
        ResetTarget.parse(text)


def test_times_round_up_to_the_next_whole_millisecond() -> None:
    # The first record at or after .2465 s is one stamped .247 or later; exact, no float error.
    assert to_millis(datetime(1970, 1, 1, 0, 0, 0, 246_500, tzinfo=UTC)) == 247
    assert to_millis(datetime(1970, 1, 1, 0, 0, 0, 246_000, tzinfo=UTC)) == 246
    assert to_millis(datetime(2026, 11, 21, 14, 1, 3, 246_000, tzinfo=UTC)) == 1795269663246


# -- plans -----------------------------------------------------------------------------------

MARKS = {T0: Watermarks(2, 10), T1: Watermarks(0, 5)}


def test_plan_to_earliest_and_latest_use_each_partitions_range() -> None:
    kafka = {T0: 7}
    rows = build_plan([T1, T0], ResetTarget(TargetKind.EARLIEST), MARKS, kafka)
    assert [(r.partition, r.kafka, r.sink, r.new) for r in rows] == [
        (T0, 7, None, 2),
        (T1, None, None, 0),
    ]
    rows = build_plan([T0, T1], ResetTarget(TargetKind.LATEST), MARKS, kafka, sink={T0: 9})
    assert [(r.kafka, r.sink, r.new) for r in rows] == [(7, 9, 10), (None, None, 5)]
    assert all(r.changes for r in rows)


def test_plan_to_a_time_takes_the_end_where_no_record_is_that_recent() -> None:
    target = ResetTarget(TargetKind.TIME, timestamp_ms=1)
    rows = build_plan([T0, T1], target, MARKS, {T0: 4, T1: 5}, times={T0: 4, T1: None})
    assert [(r.new, r.note) for r in rows] == [
        (4, ""),
        (5, "none at or after the time: end"),
    ]
    assert [r.changes for r in rows] == [False, False]


def test_plan_to_an_offset_is_clamped_to_the_range() -> None:
    rows = build_plan([T0, T1], ResetTarget(TargetKind.OFFSET, offset=1), MARKS, {})
    assert [(r.new, r.note) for r in rows] == [(2, "1 is before the first offset: first"), (1, "")]
    rows = build_plan([T0], ResetTarget(TargetKind.OFFSET, offset=99), MARKS, {})
    assert (rows[0].new, rows[0].note) == (10, "99 is past the end: end")


def test_plan_rows_as_json() -> None:
    row = PlanRow(T0, kafka=None, sink=3, low=0, high=9, new=9, note="x")
    assert row.to_dict(with_sink=True) == {
        "topic": "orders",
        "partition": 0,
        "current": None,
        "sink_current": 3,
        "new": 9,
        "first": 0,
        "end": 9,
        "note": "x",
    }
    assert "sink_current" not in row.to_dict(with_sink=False)


# -- connection settings ---------------------------------------------------------------------


def write_stack(path: Path, **extra: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"bootstrap": "10.0.0.1:9092", "source_dsn": "ignored", **extra}
    path.write_bytes(orjson.dumps(data))
    return path


def test_the_default_stack_description_is_optional_an_explicit_one_is_not(tmp_path: Path) -> None:
    assert load_stack(None)[0] is None
    with pytest.raises(CliError, match=r"no stack description at .*make up") as info:
        load_stack(tmp_path / "missing.json")
    assert info.value.code == 2
    with pytest.raises(CliError, match="no Kafka to talk to: pass --bootstrap"):
        connect(None, None, 5)


def test_the_stack_description_gives_defaults(tmp_path: Path) -> None:
    write_stack(
        tmp_path / ".devstack/latest/stack.json",
        databases={"stats-aggregator": "postgresql://u:secret@h/stats"},
        groups={"stats-aggregator": "stats-aggregator-group-run1"},
    )
    conn = connect(None, None, 5)
    assert conn.bootstrap == "10.0.0.1:9092"
    assert "stack.json" in conn.source
    assert conn.kafka_config["bootstrap.servers"] == "10.0.0.1:9092"
    assert conn.group_of("stats-aggregator") == "stats-aggregator-group-run1"
    assert conn.group_of("search-indexer") == "search-indexer-group"
    assert conn.service_of("stats-aggregator-group-run1") == "stats-aggregator"
    assert conn.service_of("search-indexer-group") == "search-indexer"
    assert conn.service_of("someone-else") is None
    assert conn.stack_database("stats-aggregator-group-run1") == "postgresql://u:secret@h/stats"
    assert conn.stack_database("search-indexer-group") is None
    # --bootstrap (or KAFKA_BOOTSTRAP_SERVERS) wins over the stack.
    assert connect("k:1", None, 5).bootstrap == "k:1"


def test_an_invalid_stack_description_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "stack.json"
    bad.write_text("{not json")
    with pytest.raises(CliError, match=r"stack.json is not a valid stack description"):
        load_stack(bad)
    bad.write_text('{"databases": {}}')
    with pytest.raises(CliError, match="bootstrap"):
        load_stack(bad)


def test_database_url_options_and_redaction() -> None:
    url = "postgresql+psycopg2://u:pw@h:5/db?options=-csearch_path%3Dx"
    assert parse_group_urls([f"g1={url}", " g2 = postgresql://h/d"]) == {
        "g1": url,
        "g2": "postgresql://h/d",
    }
    for bad in ("postgresql://h/d", "=postgresql://h/d", "g="):
        with pytest.raises(CliError, match="GROUP=URL"):
            parse_group_urls([bad])
    assert "pw" not in redact(url) and "***" in redact(url)


def test_usage_errors_exit_2_with_a_message() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2
    assert "pass --bootstrap" in result.stderr and "make up" in result.stderr
    result = runner.invoke(
        app, ["offsets", "reset", "-g", "g", "--to", "soon", "--bootstrap", "x:1"]
    )
    assert result.exit_code == 2 and "--to" in result.stderr
    result = runner.invoke(app, ["replay", "--service", "nope", "--from", "2026-01-01"])
    assert result.exit_code == 2 and "event-store-writer" in result.stderr
    result = runner.invoke(
        app, ["replay", "-s", "search-indexer", "--from", "earliest", "--bootstrap", "x:1"]
    )
    assert result.exit_code == 2 and "ISO-8601" in result.stderr


def test_replay_help_explains_why_it_is_safe() -> None:
    result = CliRunner().invoke(app, ["replay", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for fact in ("ON CONFLICT (event_id)", "LSN", "version-guarded", "latest image", "scale"):
        assert fact in text, fact


# -- rendering -------------------------------------------------------------------------------


def test_status_shows_members_their_partitions_offsets_and_lag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    desc = GroupDescription(
        "stats-aggregator-group",
        GroupState.STABLE,
        (
            GroupMember("m-1", "stats-aggregator", "10.1.2.3", assignment=(T0,)),
            GroupMember("m-2", "stats-aggregator", "10.1.2.4", assignment=(T1,)),
        ),
    )
    status = GroupStatus(
        desc,
        service="stats-aggregator",
        strategy=str(CommitStrategy.SINK_MANAGED),
        database="postgresql://u:***@h/stats",
        partitions=[
            PartitionStatus(T0, "stats-aggregator", committed=8, sink=6, first=0, end=10),
            PartitionStatus(T1, None, committed=None, sink=None, first=0, end=4),
        ],
    )
    render([status])
    out = capsys.readouterr().out
    assert "stats-aggregator-group" in out and "Stable" in out
    assert "10.1.2.3" in out and "orders[0]" in out and "10.1.2.4" in out and "orders[1]" in out
    assert "lag 2" in out and "sink lag 4" in out
    data = status.to_dict()
    assert data["lag"] == 2 and data["sink"]["lag"] == 4
    assert data["members"][0] == {
        "member_id": "m-1",
        "client_id": "stats-aggregator",
        "host": "10.1.2.3",
        "instance_id": None,
        "assignment": [{"topic": "orders", "partition": 0}],
    }
    assert data["partitions"][1] == {
        "topic": "orders",
        "partition": 1,
        "member": None,
        "committed": None,
        "first": 0,
        "end": 4,
        "lag": None,
        "sink_committed": None,
        "sink_lag": None,
    }


# -- the catalogue is the installed services' descriptors ------------------------------------


def test_catalogue_is_the_installed_services_descriptors() -> None:
    from consumer_runtime import services

    known = catalogue()
    assert known == services()
    assert {
        "event-store-writer",
        "stats-aggregator",
        "search-indexer",
        "analytics-flusher",
    } <= set(known)
    assert known["event-store-writer"].sink_managed
    assert known["search-indexer"].strategy is CommitStrategy.COMMIT_AFTER_FLUSH
    assert known["event-store-writer"].subscribes_to("dbserver1.public.anything")
    assert not known["search-indexer"].subscribes_to("dbserver1.public.orders")
    with pytest.raises(KeyError, match="unknown service 'nope'"):
        service("nope")
