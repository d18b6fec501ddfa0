"""``cdc dlq`` on the embedded broker and PostgreSQL.

Malformed records (not JSON, bad UTF-8, an unknown op) with headers are produced to a topic and
consumed by the writer's runtime and sink in this process, so their rows land in
``dead_letter_queue`` as in production. Then, through the commands: list and show them (bytes
shown losslessly), replay them (a dry run changes nothing; ``--execute`` produces each original
key/value/headers once to the original topic, read back and compared byte for byte; a second
replay produces nothing), discard; concurrent replays never produce a row twice; a broker that
does not answer leaves the rows ``new``.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import typer
from cdc_events.testing import golden
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from consumer_runtime import (
    CommitStrategy,
    OutgoingRecord,
    Publisher,
    Runtime,
    RuntimeSettings,
    create_publisher,
)
from devstack import wait_until
from devstack.pytest_plugin import SinkSchema
from event_store_writer import EventDecoder, EventStoreSink, Settings, StoreMetrics
from event_store_writer._dlq import REPLAYED_FROM_HEADER, Selection
from event_store_writer.cli import register
from event_store_writer.store import StoreReader
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

SERVICE = "event-store-writer"
Headers = tuple[tuple[str, bytes | None], ...]

UNKNOWN_OP = (
    b'{"op":"x","before":null,"after":{"id":3},"source":{"connector":"postgresql","db":"shop",'
    b'"schema":"public","table":"items","ts_ms":1,"lsn":5},"ts_ms":2}'
)
# (key, value, headers, expected error code). Header values include an empty one, a null one,
# bytes that are not UTF-8 and a repeated name: all must come back as they were.
MALFORMED: list[tuple[bytes | None, bytes, Headers, str]] = [
    (
        b'{"id": 1}',
        b"not json at all",
        (("trace-id", b"t-1"), ("bin", b"\x00\xff\x80")),
        "not_json",
    ),
    (
        b'{"id": 2}',
        b'\xff\xfe\x00{"id": 2, "bad": "\xc3\x28"}',
        (("trace-id", b"t-2"), ("empty", b""), ("nul", None)),
        "bad_utf8",
    ),
    (b"\xc3\x28", UNKNOWN_OP, (("dup", b"a"), ("dup", b"b")), "unknown_op"),
]


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers


# -- helpers ---------------------------------------------------------------------------------


def _produce(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes, Headers]]
) -> None:
    """Produce with the Java client's partitioner; null header values stay null."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
        }
    )
    errors: list[str] = []
    for key, value, headers in records:
        producer.produce(
            topic,
            key=key,
            value=value,
            headers=list(headers),
            on_delivery=lambda err, _m: errors.append(str(err)) if err else None,
        )
    assert producer.flush(30) == 0
    assert not errors, errors


def _read(bootstrap: str, topic: str, idle: float = 2.0, timeout: float = 60.0) -> list[Rec]:
    """Every record of ``topic`` (no consumer group), null header values kept."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        out: list[Rec] = []
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() - last < idle and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.2):
                if msg.error():
                    continue
                last = time.monotonic()
                out.append(
                    Rec(
                        msg.partition() or 0,
                        msg.offset() or 0,
                        msg.key(),
                        msg.value(),
                        tuple((k, v) for k, v in msg.headers() or ()),
                    )
                )
        return out
    finally:
        consumer.close()


def _settings(bootstrap: str, topics: Sequence[str], group: str, url: str, dlq: str) -> Settings:
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        kafka_topics=tuple(topics),
        kafka_group_id=group,
        database_url=url,
        dlq_topic=dlq,
        batch_max_wait_ms=200,
        health_port=0,
        kafka_consumer_extra={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )


def _dead_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM dead_letter_queue")).scalar_one())


def _run_writer(settings: Settings, engine: Engine, dead_letters: int) -> None:
    """The writer's runtime and sink in this process until ``dead_letters`` rows are stored."""
    sink = EventStoreSink(
        engine, settings.group_id(SERVICE), metrics=StoreMetrics(CollectorRegistry())
    )
    runtime: Runtime[Any] = Runtime(
        SERVICE,
        settings,
        EventDecoder(),
        sink,
        CommitStrategy.SINK_MANAGED,
        registry=CollectorRegistry(),
    )
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: _dead_count(engine) >= dead_letters, 90, message=f"{dead_letters} dead letters"
        )
    finally:
        runtime.stop()
        thread.join(30)
    assert _dead_count(engine) == dead_letters


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _cli(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(_app(), list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result


def _json(*args: str, code: int = 0) -> Any:
    return orjson.loads(_cli(*args, "--json", code=code).stdout)


def _statuses(engine: Engine) -> dict[int, tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, status, retry_count FROM dead_letter_queue"))
        return {int(i): (s, int(n)) for i, s, n in rows}


def _replays(records: list[Rec]) -> dict[int, list[Rec]]:
    """Replayed records by the DLQ row id they name."""
    out: dict[int, list[Rec]] = {}
    for r in records:
        ids = [v for k, v in r.headers if k == REPLAYED_FROM_HEADER]
        if ids:
            assert len(ids) == 1 and ids[0] is not None
            out.setdefault(int(ids[0]), []).append(r)
    return out


def _without_replay_header(headers: Headers) -> Headers:
    assert headers[-1][0] == REPLAYED_FROM_HEADER
    return headers[:-1]


# -- the commands on real dead letters -------------------------------------------------------


def test_dead_letters_are_listed_shown_replayed_once_and_discarded(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    store_engine: Engine,
    sink_schema: SinkSchema,
    unique_id: str,
) -> None:
    # Not dbserver1.public.*: the session's other writers subscribe to that pattern, and this
    # topic's good record would land in their stores.
    topic = make_topic(3, name=f"dlqtest-{unique_id}.public.items")
    dlq_topic = make_topic(1)
    good = golden("pg-schema-products-c")
    _produce(
        kafka_bootstrap,
        topic,
        [(k, v, h) for k, v, h, _ in MALFORMED] + [(good.key, good.value, ())],
    )
    originals = _read(kafka_bootstrap, topic, idle=1.0)
    assert len(originals) == 4
    _run_writer(
        _settings(kafka_bootstrap, [topic], f"g-{unique_id}", sink_schema.url, dlq_topic),
        store_engine,
        dead_letters=3,
    )
    url = ("--database-url", sink_schema.url)
    by_position = {(r.partition, r.offset): r for r in originals}

    # list: every row with its code, and the summary by code and status.
    listing = _json("dlq", "list", *url)
    assert listing["total"] == 3
    rows = {r["id"]: r for r in listing["rows"]}
    source = {i: by_position[(r["partition"], r["offset"])] for i, r in rows.items()}
    expected = {(k, v, h): code for k, v, h, code in MALFORMED}
    code_of = {i: expected[(s.key, s.value, s.headers)] for i, s in source.items()}
    assert {i: r["error_code"] for i, r in rows.items()} == code_of
    assert all(r["status"] == "new" and r["retry_count"] == 0 for r in rows.values())
    assert all(r["topic"] == topic for r in rows.values())
    assert sorted((s["code"], s["status"], s["rows"]) for s in listing["summary"]) == [
        ("bad_utf8", "new", 1),
        ("not_json", "new", 1),
        ("unknown_op", "new", 1),
    ]
    ids = {code: i for i, code in code_of.items()}
    table = _cli("dlq", "list", *url).stdout
    for code in ("not_json", "bad_utf8", "unknown_op", "by error code and status"):
        assert code in table, table
    assert [r["id"] for r in _json("dlq", "list", "--code", "bad_utf8", *url)["rows"]] == [
        ids["bad_utf8"]
    ]
    assert _json("dlq", "list", "--status", "replayed", *url)["total"] == 0
    assert _json("dlq", "list", "--since", "1h", "--topic", topic, *url)["total"] == 3
    assert _json("dlq", "list", "--since", "2999-01-01", *url)["total"] == 0
    assert len(_json("dlq", "list", "--limit", "2", *url)["rows"]) == 2
    _cli("dlq", "list", "--status", "bogus", *url, code=2)

    # show: key, value and headers as produced (base64 in JSON; hex for bad UTF-8 on screen).
    for row_id, original in source.items():
        shown = _json("dlq", "show", str(row_id), *url)
        assert base64.b64decode(shown["value"]["base64"]) == original.value
        assert base64.b64decode(shown["key"]["base64"]) == original.key
        assert [
            (h["name"], None if h["base64"] is None else base64.b64decode(h["base64"]))
            for h in shown["headers"]
        ] == list(original.headers)
        assert shown["error_code"] == code_of[row_id]
    screen = _cli("dlq", "show", str(ids["bad_utf8"]), *url).stdout.splitlines()
    hex_line = screen[screen.index(next(s for s in screen if s.startswith("value ("))) + 1]
    assert "not UTF-8: hex" in next(s for s in screen if s.startswith("value ("))
    assert bytes.fromhex(hex_line) == source[ids["bad_utf8"]].value
    lines = [line.rstrip() for line in screen]
    assert "  nul: null" in lines and "  empty:" in lines and "  trace-id: t-2" in lines
    screen = _cli("dlq", "show", str(ids["not_json"]), *url).stdout
    assert "not json at all" in screen and "UTF-8" in screen and "  bin: hex:00ff80" in screen
    _cli("dlq", "show", "999999", *url, code=1)

    # replay, dry run: lists the rows, changes nothing.
    before = _statuses(store_engine)
    dry = _json("dlq", "replay", "--all", *url)
    assert dry["execute"] is False
    assert sorted(r["id"] for r in dry["done"]) == sorted(rows)
    assert "--execute" in _cli("dlq", "replay", "--all", *url).stdout
    assert _statuses(store_engine) == before
    assert len(_read(kafka_bootstrap, topic, idle=1.0)) == 4
    _cli("dlq", "replay", *url, code=2)  # neither ids nor --all

    # replay --execute of two rows: each once, original bytes, to its original topic.
    pick = [ids["not_json"], ids["bad_utf8"]]
    boot = ("--bootstrap", kafka_bootstrap)
    done = _json("dlq", "replay", *map(str, pick), "--execute", *url, *boot)
    assert [r["id"] for r in done["done"]] == sorted(pick)
    assert done["failed"] is None and done["skipped"] == []
    after = _read(kafka_bootstrap, topic)
    replays = _replays(after)
    assert sorted(replays) == sorted(pick)
    for row_id, copies in replays.items():
        assert len(copies) == 1
        copy, original = copies[0], source[row_id]
        assert copy.key == original.key
        assert copy.value == original.value
        assert _without_replay_header(copy.headers) == original.headers
        assert copy.headers[-1] == (REPLAYED_FROM_HEADER, str(row_id).encode())
        # Same key, same partitioner (murmur2, as the Java producer): the original partition.
        assert copy.partition == original.partition
    assert len(after) == 6
    status = _statuses(store_engine)
    assert [status[i] for i in pick] == [("replayed", 1), ("replayed", 1)]
    assert status[ids["unknown_op"]] == ("new", 0)
    shown = _json("dlq", "show", str(pick[0]), *url)
    assert shown["status_changed_at"] is not None and "@" in shown["status_changed_by"]

    # A second replay of the same rows produces nothing.
    again = _json("dlq", "replay", *map(str, pick), "--execute", *url, *boot)
    assert again["done"] == []
    assert {s["id"]: s["reason"] for s in again["skipped"]} == dict.fromkeys(
        pick, "already replayed"
    )
    screen = _cli("dlq", "replay", *map(str, pick), "--execute", *url, *boot).stdout
    assert "skipped (already replayed)" in screen
    assert len(_read(kafka_bootstrap, topic, idle=1.0)) == 6

    # discard: a dry run first, then the rest of --code unknown_op with a reason.
    dry = _json("dlq", "discard", "--all", "--code", "unknown_op", *url)
    assert [r["id"] for r in dry["done"]] == [ids["unknown_op"]]
    assert _statuses(store_engine)[ids["unknown_op"]] == ("new", 0)
    gone = _json(
        "dlq",
        "discard",
        "--all",
        "--code",
        "unknown_op",
        "--reason",
        "producer bug, fixed upstream",
        "--execute",
        *url,
    )
    assert [r["id"] for r in gone["done"]] == [ids["unknown_op"]]
    assert gone["done"][0]["status_reason"] == "producer bug, fixed upstream"
    assert _statuses(store_engine)[ids["unknown_op"]] == ("discarded", 0)
    assert "producer bug" in _cli("dlq", "show", str(ids["unknown_op"]), *url).stdout

    # Nothing is new any more: a replay of everything produces nothing and says why.
    final = _json("dlq", "replay", "--all", "--execute", *url, *boot)
    assert final["done"] == []
    assert sorted(s["reason"] for s in final["skipped"]) == [
        "already discarded",
        "already replayed",
        "already replayed",
    ]
    assert len(_read(kafka_bootstrap, topic, idle=1.0)) == 6
    missing = _json("dlq", "replay", "424242", "--execute", *url, *boot, code=1)
    assert missing["skipped"] == [{"id": 424242, "status": None, "reason": "no such row"}]
    summary = _json("dlq", "list", *url)["summary"]
    assert sorted((s["code"], s["status"]) for s in summary) == [
        ("bad_utf8", "replayed"),
        ("not_json", "replayed"),
        ("unknown_op", "discarded"),
    ]


# -- concurrent replays ------------------------------------------------------------------------


class _Gated:
    """A real publisher whose first send waits for ``release``: the replay holds its locks."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner
        self.holding = threading.Event()
        self.release = threading.Event()

    def send(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        if not self.holding.is_set():
            self.holding.set()
            assert self.release.wait(60)
        self.inner.send(topic, records)

    def close(self) -> None:
        self.inner.close()


_CLI_SCRIPT = (
    "import typer\n"
    "from event_store_writer.cli import register\n"
    "app = typer.Typer()\n"
    "register(app)\n"
    "app()\n"
)


def test_concurrent_replays_produce_each_row_once(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    store_engine: Engine,
    sink_schema: SinkSchema,
    unique_id: str,
) -> None:
    per_topic = 150
    held, raced = (
        make_topic(3, name=f"dlqtest-{unique_id}.public.held"),
        make_topic(3, name=f"dlqtest-{unique_id}.public.raced"),
    )
    for topic in (held, raced):
        _produce(
            kafka_bootstrap,
            topic,
            [
                (f"k{i}".encode(), f"junk {i}".encode(), (("n", str(i).encode()),))
                for i in range(per_topic)
            ],
        )
    _run_writer(
        _settings(kafka_bootstrap, [held, raced], f"g-{unique_id}", sink_schema.url, make_topic(1)),
        store_engine,
        dead_letters=2 * per_topic,
    )
    with store_engine.connect() as conn:
        ids = {
            t: [
                int(i)
                for i in conn.execute(
                    sa.text("SELECT id FROM dead_letter_queue WHERE topic = :t ORDER BY id"),
                    {"t": t},
                ).scalars()
            ]
            for t in (held, raced)
        }
    url = ("--database-url", sink_schema.url)
    boot = ("--bootstrap", kafka_bootstrap)

    # Deterministic: replay A holds the locks of its first chunk (100 rows) while replay B runs.
    # B replays only the rows A does not hold and reports A's as locked; then A finishes.
    gated = _Gated(
        create_publisher(
            RuntimeSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topics=("x",)), "test"
        )
    )
    reader = StoreReader(sink_schema.url)
    result: dict[str, Any] = {}

    def replay_a() -> None:
        result["a"] = reader.replay_dead_letters(
            Selection(topic=held), gated, changed_by="a@test", chunk=100
        )

    thread = threading.Thread(target=replay_a)
    thread.start()
    try:
        assert gated.holding.wait(30)
        b = _json("dlq", "replay", "--all", "--topic", held, "--execute", *url, *boot)
    finally:
        gated.release.set()
        thread.join(60)
        gated.close()
        reader.close()
    a = result["a"]
    assert a.failed is None
    assert [r.id for r in a.done] == ids[held][:100]
    assert [r["id"] for r in b["done"]] == ids[held][100:]
    assert {s["id"]: s["reason"] for s in b["skipped"]} == dict.fromkeys(
        ids[held][:100], "locked by another replay or discard in progress"
    )

    # Racing processes over the same rows: whatever the interleaving, each row once.
    cmd = [sys.executable, "-c", _CLI_SCRIPT, "dlq", "replay", "--all", "--topic", raced]
    procs = [
        subprocess.Popen(
            [*cmd, "--execute", "--json", *url, *boot], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    done = [[r["id"] for r in orjson.loads(out)["done"]] for out in outputs]
    print(f"racing replays: {len(done[0])} + {len(done[1])} rows")
    assert not set(done[0]) & set(done[1])
    assert sorted(done[0] + done[1]) == ids[raced]

    for topic in (held, raced):
        records = _read(kafka_bootstrap, topic)
        replays = _replays(records)
        assert sorted(replays) == ids[topic]
        assert all(len(copies) == 1 for copies in replays.values())
        assert len(records) == 2 * per_topic
    assert set(_statuses(store_engine).values()) == {("replayed", 1)}


# -- failures and connection defaults ----------------------------------------------------------


def _insert_dead_letter(engine: Engine, topic: str) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.text(
                    "INSERT INTO dead_letter_queue (topic, kafka_partition, kafka_offset, key, "
                    "value, headers, error_type, error_code, error_message) VALUES (:t, 0, 7, "
                    "NULL, :v, NULL, 'cdc_events.ParseError', 'not_json', 'junk') RETURNING id"
                ),
                {"t": topic, "v": b"junk"},
            ).scalar_one()
        )


def test_a_broker_that_does_not_answer_leaves_the_rows_new(
    store_engine: Engine, sink_schema: SinkSchema, make_topic: Callable[..., str]
) -> None:
    row_id = _insert_dead_letter(store_engine, make_topic(1))
    result = _cli(
        "dlq",
        "replay",
        str(row_id),
        "--execute",
        "--database-url",
        sink_schema.url,
        "--bootstrap",
        "127.0.0.1:1",
        code=1,
    )
    assert f"row {row_id}" in result.stderr and "stay new" in result.stderr
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr
    assert _statuses(store_engine) == {row_id: ("new", 0)}


@pytest.fixture
def in_empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    return tmp_path


def test_connection_comes_from_the_options_or_the_dev_stack_file(
    in_empty_dir: Path,
    store_engine: Engine,
    sink_schema: SinkSchema,
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
) -> None:
    result = _cli("dlq", "list", code=2)
    assert "--database-url" in result.stderr and "DATABASE_URL" in result.stderr
    assert "stack.json" in result.stderr
    assert "not a database URL" in _cli("dlq", "list", "--database-url", "nope", code=2).stderr
    unreachable = "postgresql://u:secret@127.0.0.1:1/db"
    result = _cli("dlq", "list", "--database-url", unreachable, code=2)
    assert "cannot reach the event store" in result.stderr and "secret" not in result.stderr

    row_id = _insert_dead_letter(store_engine, make_topic(1))
    assert (
        "--bootstrap"
        in _cli(
            "dlq", "replay", "--all", "--execute", "--database-url", sink_schema.url, code=2
        ).stderr
    )

    stack = in_empty_dir / ".devstack" / "latest" / "stack.json"
    stack.parent.mkdir(parents=True)
    stack.write_bytes(
        orjson.dumps(
            {"bootstrap": kafka_bootstrap, "databases": {"event-store-writer": sink_schema.url}}
        )
    )
    assert [r["id"] for r in _json("dlq", "list")["rows"]] == [row_id]
    done = _json("dlq", "replay", "--all", "--execute")
    assert [r["id"] for r in done["done"]] == [row_id]
    assert _statuses(store_engine) == {row_id: ("replayed", 1)}
