"""`cdc status`, `cdc offsets show|reset` and `cdc replay` against the embedded broker and
PostgreSQL.

Where a test asserts on end offsets or lag, records are produced one per batch: the embedded
broker (tansu) reports the high watermark as the base offset of the partition's last batch + 1,
so only single-record batches make watermark-based lag exact there. Real Kafka needs no such
care, and the commands are written for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from cdc_cli import app
from click.testing import Result
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from consumer_runtime import KafkaAdmin, TopicPartition
from devstack import free_port, produce
from devstack.pytest_plugin import SinkSchema
from sink_kit.postgres import OffsetStore
from typer.testing import CliRunner

# tansu: a group join waits for the session timeout of departed members; short keeps tests fast.
GROUP_TIMEOUTS = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No stack description of a running `make up`, no bootstrap variable, wide tables."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def cdc(kafka_bootstrap: str) -> Callable[..., Result]:
    runner = CliRunner()

    def run(*args: str, bootstrap: bool = True) -> Result:
        argv = [*args, "--bootstrap", kafka_bootstrap] if bootstrap else list(args)
        return runner.invoke(app, argv)

    return run


@pytest.fixture
def admin(kafka_bootstrap: str) -> Iterator[KafkaAdmin]:
    with KafkaAdmin({"bootstrap.servers": kafka_bootstrap}) as client:
        yield client


@contextmanager
def member(bootstrap: str, group: str, topic: str) -> Iterator[Consumer]:
    """A consumer that has joined ``group`` and holds its partitions until the block ends."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "cli-test-member",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **GROUP_TIMEOUTS,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    while not consumer.assignment():
        assert time.monotonic() < deadline, "the member never got partitions"
        consumer.consume(10, 0.2)
    try:
        yield consumer
    finally:
        consumer.close()


def fill(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    for partition, n in counts.items():
        records = [(str(i).encode(), b"x") for i in range(n)]
        produce(bootstrap, topic, records, partition=partition, one_per_batch=True)


def two_phase_topic(
    bootstrap: str, make_topic: Callable[..., str], before: int = 3, after: int = 2
) -> tuple[str, str]:
    """A 2-partition topic with ``before`` records per partition, then a time, then ``after``
    more; returns the topic and that time (ISO-8601)."""
    topic = make_topic(2)
    fill(bootstrap, topic, {0: before, 1: before})
    # Record timestamps are the producer's create time: all of the above are before `middle`.
    time.sleep(0.05)
    middle = datetime.now(UTC)
    time.sleep(0.05)
    fill(bootstrap, topic, {0: after, 1: after})
    return topic, middle.isoformat(timespec="microseconds")


def offsets_table(schema: SinkSchema) -> tuple[sa.Engine, OffsetStore]:
    """The `consumer_offsets` table of a sink-managed service, in the test's own schema."""
    engine = sa.create_engine(schema.url)
    store = OffsetStore(sa.MetaData())
    store.table.create(engine)
    return engine, store


def stored(engine: sa.Engine, store: OffsetStore, group: str, topic: str) -> dict[int, int]:
    with engine.connect() as conn:
        loaded = store.load(conn, group, [TopicPartition(topic, p) for p in (0, 1)])
    return {tp.partition: off for tp, off in loaded.items()}


def committed(admin: KafkaAdmin, group: str) -> dict[int, int]:
    return {tp.partition: off for tp, off in admin.committed_offsets(group).items()}


def commit(admin: KafkaAdmin, group: str, topic: str, offsets: dict[int, int]) -> None:
    admin.alter_committed_offsets(group, {TopicPartition(topic, p): o for p, o in offsets.items()})


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


# -- status ----------------------------------------------------------------------------------


def test_status_of_an_active_group_with_lag(
    cdc: Callable[..., Result],
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
) -> None:
    topic = make_topic(2)
    fill(kafka_bootstrap, topic, {0: 4, 1: 6})
    with member(kafka_bootstrap, kafka_group, topic) as consumer:
        consumer.commit(
            offsets=[KafkaTopicPartition(topic, 0, 1), KafkaTopicPartition(topic, 1, 6)],
            asynchronous=False,
        )
        data = as_json(cdc("status", "--group", kafka_group, "--json"))
        table = cdc("status", "--group", kafka_group)
        everything = as_json(cdc("status", "--json"))

    (group,) = data["groups"]
    assert (group["group"], group["state"], group["active"]) == (kafka_group, "Stable", True)
    # The embedded broker answers DescribeGroups without member details (empty client id,
    # host and assignment); the rendering of members is covered by the unit tests.
    assert group["lag"] == 3
    assert [
        (p["topic"], p["partition"], p["committed"], p["end"], p["lag"])
        for p in group["partitions"]
    ] == [(topic, 0, 1, 4, 3), (topic, 1, 6, 6, 0)]
    assert "sink" not in group

    assert table.exit_code == 0, table.output
    assert kafka_group in table.stdout and "Stable" in table.stdout and "lag 3" in table.stdout
    assert kafka_group in {g["group"] for g in everything["groups"]}


def test_status_shows_the_offsets_a_sink_managed_group_stored_in_its_database(
    cdc: Callable[..., Result],
    admin: KafkaAdmin,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
    sink_schema: SinkSchema,
) -> None:
    topic = make_topic(2)
    fill(kafka_bootstrap, topic, {0: 5, 1: 5})
    commit(admin, kafka_group, topic, {0: 5, 1: 5})
    engine, store = offsets_table(sink_schema)
    with engine.begin() as conn:
        store.save(conn, kafka_group, {TopicPartition(topic, 0): 2, TopicPartition(topic, 1): 5})

    data = as_json(
        cdc(
            "status",
            "-g",
            kafka_group,
            "--database-url",
            f"{kafka_group}={sink_schema.url}",
            "--json",
        )
    )
    (group,) = data["groups"]
    assert group["lag"] == 0 and group["sink"]["lag"] == 3 and group["sink"]["error"] is None
    assert sink_schema.schema in group["sink"]["database"]
    assert [(p["committed"], p["sink_committed"], p["sink_lag"]) for p in group["partitions"]] == [
        (5, 2, 3),
        (5, 5, 0),
    ]
    engine.dispose()


# -- offsets show / reset --------------------------------------------------------------------


def test_offsets_show(
    cdc: Callable[..., Result],
    admin: KafkaAdmin,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
) -> None:
    topic = make_topic(2)
    fill(kafka_bootstrap, topic, {0: 3, 1: 2})
    commit(admin, kafka_group, topic, {0: 1})
    data = as_json(cdc("offsets", "show", "--group", kafka_group, "--json"))
    assert (data["state"], data["active"], data["lag"]) == ("Empty", False, 2)
    assert [(p["partition"], p["committed"], p["first"], p["end"]) for p in data["partitions"]] == [
        (0, 1, 0, 3)
    ]
    table = cdc("offsets", "show", "--group", kafka_group)
    assert table.exit_code == 0 and topic in table.stdout


def test_reset_dry_run_changes_nothing(
    cdc: Callable[..., Result],
    admin: KafkaAdmin,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
    sink_schema: SinkSchema,
) -> None:
    topic = make_topic(2)
    fill(kafka_bootstrap, topic, {0: 4, 1: 4})
    commit(admin, kafka_group, topic, {0: 4, 1: 3})
    engine, store = offsets_table(sink_schema)
    with engine.begin() as conn:
        store.save(conn, kafka_group, {TopicPartition(topic, 0): 4})

    result = cdc(
        "offsets", "reset", "-g", kafka_group, "--to", "earliest", "--database-url", sink_schema.url
    )
    assert result.exit_code == 0, result.output
    assert "plan" in result.stdout and topic in result.stdout
    assert "dry run: nothing changed" in result.stderr
    plan = as_json(cdc("offsets", "reset", "-g", kafka_group, "--to", "earliest", "--json"))
    assert plan["executed"] is False
    assert [(p["current"], p["new"]) for p in plan["partitions"]] == [(4, 0), (3, 0)]
    assert committed(admin, kafka_group) == {0: 4, 1: 3}
    assert stored(engine, store, kafka_group, topic) == {0: 4}
    engine.dispose()


def test_reset_is_refused_while_the_group_has_a_member(
    cdc: Callable[..., Result],
    admin: KafkaAdmin,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
) -> None:
    topic = make_topic(2)
    fill(kafka_bootstrap, topic, {0: 3, 1: 3})
    commit(admin, kafka_group, topic, {0: 3, 1: 3})
    with member(kafka_bootstrap, kafka_group, topic):
        result = cdc("offsets", "reset", "-g", kafka_group, "--to", "earliest", "--execute")
        dry = cdc("offsets", "reset", "-g", kafka_group, "--to", "earliest")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert f"consumer group '{kafka_group}' is active" in message
    assert "scale the service to 0" in message
    # The dry run still shows the plan, and warns that it could not be applied now.
    assert dry.exit_code == 0 and "is active" in " ".join(dry.stderr.split())
    assert committed(admin, kafka_group) == {0: 3, 1: 3}


def test_reset_to_earliest_latest_time_and_offset(
    cdc: Callable[..., Result],
    admin: KafkaAdmin,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
) -> None:
    topic, middle = two_phase_topic(kafka_bootstrap, make_topic, before=3, after=2)
    other = make_topic(1)
    fill(kafka_bootstrap, other, {0: 2})
    commit(admin, kafka_group, topic, {0: 1, 1: 1})

    def reset(to: str, *extra: str) -> dict[str, Any]:
        data: dict[str, Any] = as_json(
            cdc("offsets", "reset", "-g", kafka_group, "--to", to, "--execute", "--json", *extra)
        )
        assert data["executed"] is True
        return data

    reset("latest")
    assert committed(admin, kafka_group) == {0: 5, 1: 5}
    reset("earliest")
    assert committed(admin, kafka_group) == {0: 0, 1: 0}
    data = reset(middle)
    assert data["target"].startswith("time ")
    assert committed(admin, kafka_group) == {0: 3, 1: 3}
    data = reset("4")
    assert committed(admin, kafka_group) == {0: 4, 1: 4}
    data = reset("99")
    assert [p["note"] for p in data["partitions"]] == ["99 is past the end: end"] * 2
    assert committed(admin, kafka_group) == {0: 5, 1: 5}
    # --topic: a topic the group has no offsets for yet, all its partitions.
    reset("1", "--topic", other)
    assert admin.committed_offsets(kafka_group) == {
        TopicPartition(other, 0): 1,
        TopicPartition(topic, 0): 5,
        TopicPartition(topic, 1): 5,
    }
    table = cdc("offsets", "reset", "-g", kafka_group, "--to", "earliest", "--execute")
    assert table.exit_code == 0 and "applied" in table.stdout
    assert admin.committed_offsets(kafka_group) == {
        TopicPartition(other, 0): 0,
        TopicPartition(topic, 0): 0,
        TopicPartition(topic, 1): 0,
    }


def test_sink_managed_reset_rewrites_the_consumer_offsets_table(
    cdc: Callable[..., Result],
    admin: KafkaAdmin,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
    sink_schema: SinkSchema,
) -> None:
    topic, middle = two_phase_topic(kafka_bootstrap, make_topic, before=4, after=3)
    engine, store = offsets_table(sink_schema)
    # The sink is ahead of Kafka's commit on partition 0 and alone on partition 1: it decides.
    commit(admin, kafka_group, topic, {0: 6})
    with engine.begin() as conn:
        store.save(conn, kafka_group, {TopicPartition(topic, 0): 7, TopicPartition(topic, 1): 7})
        store.save(conn, "someone-else", {TopicPartition(topic, 0): 7})

    data = as_json(
        cdc(
            "offsets", "reset", "-g", kafka_group, "--to", middle,
            "--database-url", sink_schema.url, "--execute", "--json",
        )
    )  # fmt: skip
    assert data["database"] is not None
    assert [(p["current"], p["sink_current"], p["new"]) for p in data["partitions"]] == [
        (6, 7, 4),
        (None, 7, 4),
    ]
    assert committed(admin, kafka_group) == {0: 4, 1: 4}
    assert stored(engine, store, kafka_group, topic) == {0: 4, 1: 4}
    assert stored(engine, store, "someone-else", topic) == {0: 7}  # other groups' rows stay

    # A database without the table is named, and nothing changes anywhere.
    wrong = sink_schema.url.replace(f"search_path%3D{sink_schema.schema}", "search_path%3Dpublic")
    result = cdc(
        "offsets", "reset", "-g", kafka_group, "--to", "earliest", "--database-url", wrong,
        "--execute",
    )  # fmt: skip
    assert result.exit_code == 1 and "no consumer_offsets table" in result.stderr
    assert committed(admin, kafka_group) == {0: 4, 1: 4}
    engine.dispose()


# -- replay ----------------------------------------------------------------------------------


def test_replay_of_a_sink_managed_service_from_the_stack_description(
    cdc: Callable[..., Result],
    admin: KafkaAdmin,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
    sink_schema: SinkSchema,
    tmp_path: Path,
) -> None:
    """The group, its database and the bootstrap come from the stack description."""
    topic, middle = two_phase_topic(kafka_bootstrap, make_topic, before=3, after=4)
    engine, store = offsets_table(sink_schema)
    commit(admin, kafka_group, topic, {0: 7, 1: 7})
    with engine.begin() as conn:
        store.save(conn, kafka_group, {TopicPartition(topic, 0): 7, TopicPartition(topic, 1): 7})
    stack = tmp_path / ".devstack" / "latest" / "stack.json"
    stack.parent.mkdir(parents=True)
    stack.write_bytes(
        orjson.dumps(
            {
                "bootstrap": kafka_bootstrap,
                "databases": {"event-store-writer": sink_schema.url},
                "groups": {"event-store-writer": kafka_group},
            }
        )
    )

    dry = cdc("replay", "--service", "event-store-writer", "--from", middle, bootstrap=False)
    assert dry.exit_code == 0, dry.output
    text = " ".join(dry.stdout.split())
    assert "sink-managed" in text and kafka_group in text and "event_id" in text
    assert committed(admin, kafka_group) == {0: 7, 1: 7}

    data = as_json(
        cdc(
            "replay", "-s", "event-store-writer", "--from", middle, "--execute", "--json",
            bootstrap=False,
        )
    )  # fmt: skip
    assert (data["group"], data["service"], data["strategy"]) == (
        kafka_group,
        "event-store-writer",
        "sink-managed",
    )
    assert committed(admin, kafka_group) == {0: 3, 1: 3}
    assert stored(engine, store, kafka_group, topic) == {0: 3, 1: 3}
    engine.dispose()


def test_replay_of_a_commit_after_flush_service_resets_kafka_only(
    cdc: Callable[..., Result],
    admin: KafkaAdmin,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
) -> None:
    topic, middle = two_phase_topic(kafka_bootstrap, make_topic, before=2, after=2)
    commit(admin, kafka_group, topic, {0: 4, 1: 4})
    data = as_json(
        cdc(
            "replay",
            "-s",
            "search-indexer",
            "-g",
            kafka_group,
            "--from",
            middle,
            "--execute",
            "--json",
        )
    )
    assert data["strategy"] == "commit-after-flush" and data["database"] is None
    assert committed(admin, kafka_group) == {0: 2, 1: 2}


def test_replay_of_a_sink_managed_service_needs_its_database(
    cdc: Callable[..., Result],
    admin: KafkaAdmin,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    kafka_group: str,
) -> None:
    topic = make_topic(1)
    fill(kafka_bootstrap, topic, {0: 2})
    commit(admin, kafka_group, topic, {0: 2})
    result = cdc(
        "replay", "-s", "stats-aggregator", "-g", kafka_group, "--from", "2026-01-01", "--execute"
    )
    assert result.exit_code == 1
    assert "sink-managed" in result.stderr and "--database-url" in result.stderr
    assert committed(admin, kafka_group) == {0: 2}


# -- connection errors -----------------------------------------------------------------------


def test_an_unreachable_broker_is_a_clear_error(cdc: Callable[..., Result]) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    for args in (
        ["status"],
        ["offsets", "show", "-g", "g"],
        ["offsets", "reset", "-g", "g", "--to", "earliest"],
        ["replay", "-s", "search-indexer", "--from", "2026-01-01"],
    ):
        result = cdc(*args, "--bootstrap", address, "--timeout", "1", bootstrap=False)
        assert result.exit_code == 1, args
        message = " ".join(result.stderr.split())
        assert f"cannot reach Kafka at {address}" in message, message
        assert "make up" in message and "--bootstrap" in message
