"""`cdc dlq --service S` on a service's DLQ topic, against the embedded broker.

Dead letters are made the way production makes them: malformed records (not JSON, bad UTF-8,
a decoder bug, a value the store refuses) with headers are produced to a topic and consumed by
the consumer runtime in this process, as the search indexer (a decoder that fails, a sink that
refuses one record), so the runtime writes them to the DLQ topic with its provenance headers.
Then, through the commands and with nothing but a stack description (as beside `make up`):
list, show (bytes as produced), replay (a dry run changes nothing; `--execute` produces each
original once to its topic and partition with the original headers plus the position headers,
read back), a second replay that does nothing, discard. Then: racing replays in two processes
produce every dead letter once; a replay cut off after producing is settled by the next one
without a second copy; an unreachable broker.
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
from cdc_cli import app
from cdc_cli._dlq_records import POSITION, REPLAY_CLAIM, REPLAY_FROM
from cdc_cli._dlq_status import Selection
from cdc_cli._dlq_topic import TopicDlq
from click.testing import Result
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from consumer_runtime import (
    HEADER_TOPIC,
    BaseSink,
    Batch,
    CommitStrategy,
    DeadLetter,
    KafkaAdmin,
    Message,
    OutgoingRecord,
    PermanentError,
    Publisher,
    RejectedError,
    Runtime,
    RuntimeSettings,
    create_publisher,
    dlq_record,
)
from devstack import wait_until
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

SERVICE = "search-indexer"
Headers = tuple[tuple[str, bytes | None], ...]

# (key, value, headers, expected code). Header values include an empty one, a null one (the
# runtime forwards a null as empty), bytes that are not UTF-8 and a repeated name.
MALFORMED: list[tuple[bytes, bytes, Headers, str]] = [
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
    (b'{"id": 3}', b'{"boom": true}', (("dup", b"a"), ("dup", b"b")), "decode_failed"),
    (b'{"id": 4}', b'{"name": "' + b"x" * 300 + b'"}', (), "store_rejected"),
]
GOOD = (b'{"id": 5}', b'{"name": "espresso cup"}', ())


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers


# -- a service on the runtime ----------------------------------------------------------------


def decode(message: Message) -> dict[str, Any]:
    """A decoder as strict as a real one, with a bug for ``boom``."""
    raw = message.value() or b""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PermanentError("the value is not UTF-8", code="bad_utf8") from None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise PermanentError("the value is not JSON", code="not_json") from None
    if "boom" in value:
        raise KeyError("boom")  # any exception: decode_failed
    return dict(value)


class NameLimitedSink(BaseSink[dict[str, Any]]):
    """Refuses for good a name longer than 100 characters, as a store column would."""

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []

    def write_batch(self, batch: Batch[dict[str, Any]]) -> None:
        rows = [r for records in batch.records.values() for r in records]
        if any(len(str(r.get("name", ""))) > 100 for r in rows):
            raise RejectedError('value too long for type character varying(100) (column "name")')
        self.written += rows


def run_service(bootstrap: str, topic: str, dlq: str, dead_letters: int) -> None:
    settings = RuntimeSettings(
        kafka_bootstrap_servers=bootstrap,
        kafka_topics=(topic,),
        kafka_group_id=f"g-{uuid.uuid4().hex[:8]}",
        dlq_topic=dlq,
        batch_max_wait_ms=200,
        health_port=0,
        kafka_consumer_extra={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )
    runtime: Runtime[dict[str, Any]] = Runtime(
        SERVICE,
        settings,
        decode,
        NameLimitedSink(),
        CommitStrategy.COMMIT_AFTER_FLUSH,
        registry=CollectorRegistry(),
    )
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: len(read(bootstrap, dlq, idle=0.3)) >= dead_letters,
            90,
            message=f"{dead_letters} dead letters in {dlq}",
        )
    finally:
        runtime.stop()
        thread.join(30)
    assert len(read(bootstrap, dlq, idle=0.5)) == dead_letters


# -- helpers ---------------------------------------------------------------------------------


def produce(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes, Headers]]) -> None:
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


def read(bootstrap: str, topic: str, idle: float = 1.0, timeout: float = 60.0) -> list[Rec]:
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
            for msg in consumer.consume(500, 0.1):
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


def replays(records: Sequence[Rec]) -> dict[str, list[Rec]]:
    """Replayed records by the dead letter they name (``<dlq>/<id>`` -> copies)."""
    out: dict[str, list[Rec]] = {}
    for r in records:
        refs = [v for k, v in r.headers if k == REPLAY_FROM]
        if refs:
            assert len(refs) == 1 and refs[0] is not None
            out.setdefault(refs[0].decode(), []).append(r)
    return out


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No stack description but the test's own, no bootstrap variable, wide tables."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("COLUMNS", "250")


def write_stack(bootstrap: str, service_env: dict[str, dict[str, str]]) -> None:
    """What `make up` leaves in the working directory (the part these commands read)."""
    stack = Path(".devstack/latest/stack.json")
    stack.parent.mkdir(parents=True, exist_ok=True)
    stack.write_bytes(orjson.dumps({"bootstrap": bootstrap, "service_env": service_env}))


def cdc(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, ["dlq", *args])
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


def cdc_json(*args: str, code: int = 0) -> Any:
    return orjson.loads(cdc(*args, "--json", code=code).stdout)


# -- the commands on real dead letters -------------------------------------------------------


def test_a_services_dead_letters_listed_shown_replayed_once_and_discarded(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique_id: str
) -> None:
    topic = make_topic(3, name=f"dlqtest-{unique_id}.products")
    dlq = make_topic(1, name=f"{SERVICE}-{unique_id}.dlq")
    produce(kafka_bootstrap, topic, [(k, v, h) for k, v, h, _ in MALFORMED] + [GOOD])
    originals = read(kafka_bootstrap, topic)
    assert len(originals) == 5
    run_service(kafka_bootstrap, topic, dlq, dead_letters=4)
    # Beside `make up`: the broker and the service's DLQ_TOPIC from the stack description.
    write_stack(kafka_bootstrap, {SERVICE: {"DLQ_TOPIC": dlq}})
    svc = ("--service", SERVICE)
    by_position = {(r.partition, r.offset): r for r in originals}

    # list: every dead letter with its code, and the summary by code and status.
    listing = cdc_json("list", *svc)
    assert (listing["dlq_topic"], listing["status_topic"]) == (dlq, f"{dlq}.status")
    assert listing["total"] == 4
    rows = {r["id"]: r for r in listing["rows"]}
    source = {i: by_position[(r["partition"], r["offset"])] for i, r in rows.items()}
    expected = {(k, v): code for k, v, _, code in MALFORMED}
    code_of = {i: expected[(s.key or b"", s.value or b"")] for i, s in source.items()}
    assert {i: r["error_code"] for i, r in rows.items()} == code_of
    assert all(r["status"] == "new" and r["topic"] == topic for r in rows.values())
    assert all(r["service"] == SERVICE for r in rows.values())
    ids = {code: i for i, code in code_of.items()}
    assert "KeyError" in rows[ids["decode_failed"]]["error_message"]
    assert "character varying(100)" in rows[ids["store_rejected"]]["error_message"]
    assert sorted((s["code"], s["status"], s["rows"]) for s in listing["summary"]) == [
        ("bad_utf8", "new", 1),
        ("decode_failed", "new", 1),
        ("not_json", "new", 1),
        ("store_rejected", "new", 1),
    ]
    table = cdc("list", *svc).stdout
    for text in ("not_json", "bad_utf8", "decode_failed", "by error code and status", dlq):
        assert text in table, table
    assert [r["id"] for r in cdc_json("list", *svc, "--code", "bad_utf8")["rows"]] == [
        ids["bad_utf8"]
    ]
    assert cdc_json("list", *svc, "--status", "replayed")["total"] == 0
    assert cdc_json("list", *svc, "--topic", "elsewhere")["total"] == 0
    assert len(cdc_json("list", *svc, "--limit", "2")["rows"]) == 2
    cdc("list", *svc, "--status", "bogus", code=2)

    # show: key, value and headers as produced (base64 in JSON; hex for bad UTF-8 on screen).
    for dead_id, original in source.items():
        shown = cdc_json("show", dead_id, *svc)
        assert base64.b64decode(shown["value"]["base64"]) == original.value
        assert base64.b64decode(shown["key"]["base64"]) == original.key
        assert [(h["name"], base64.b64decode(h["base64"])) for h in shown["headers"]] == [
            (k, v if v is not None else b"") for k, v in original.headers
        ]
        assert shown["error_code"] == code_of[dead_id] and shown["history"] == []
        assert shown["provenance_headers"][0]["name"] == HEADER_TOPIC
    screen = cdc("show", ids["bad_utf8"], *svc).stdout.splitlines()
    heading = next(s for s in screen if s.startswith("value ("))
    assert "not UTF-8: hex" in heading
    assert bytes.fromhex(screen[screen.index(heading) + 1]) == source[ids["bad_utf8"]].value
    lines = [line.rstrip() for line in screen]
    assert "  empty:" in lines and "  nul:" in lines and "  trace-id: t-2" in lines
    assert f"  __connect.errors.topic: {topic}" in lines
    assert any(line.startswith("  error     bad_utf8") for line in lines)
    screen_text = cdc("show", ids["not_json"], *svc).stdout
    assert "not json at all" in screen_text and "  bin: hex:00ff80" in screen_text
    cdc("show", "0:999999", *svc, code=1)
    cdc("show", "17", *svc, code=2)

    # replay, dry run: lists the dead letters, changes nothing.
    dry = cdc_json("replay", "--all", *svc)
    assert dry["execute"] is False and sorted(r["id"] for r in dry["done"]) == sorted(rows)
    assert "--execute" in cdc("replay", "--all", *svc).stdout
    assert len(read(kafka_bootstrap, topic, idle=0.5)) == 5
    assert f"{dlq}.status" not in KafkaAdmin({"bootstrap.servers": kafka_bootstrap}).topics()
    cdc("replay", *svc, code=2)  # neither ids nor --all

    # replay --execute of two: each once, original bytes, to its original topic and partition.
    pick = sorted([ids["not_json"], ids["bad_utf8"]])
    done = cdc_json("replay", *pick, "--execute", *svc)
    assert [r["id"] for r in done["done"]] == pick
    assert done["failed"] == [] and done["skipped"] == [] and done["error"] is None
    after = read(kafka_bootstrap, topic)
    copies = replays(after)
    assert sorted(copies) == [f"{dlq}/{i}" for i in pick]
    for dead_id in pick:
        [copy] = copies[f"{dlq}/{dead_id}"]
        original = source[dead_id]
        assert (copy.key, copy.value) == (original.key, original.value)
        own = tuple((k, v if v is not None else b"") for k, v in original.headers)
        assert copy.headers[: len(own)] == own
        added = dict(copy.headers[len(own) :])
        assert [added[h] for h in POSITION] == [
            topic.encode(),
            str(original.partition).encode(),
            str(original.offset).encode(),
        ]
        assert list(added) == [*POSITION, REPLAY_FROM, REPLAY_CLAIM]
        # Same key, same partitioner (murmur2, as the Java producer): the original partition.
        assert copy.partition == original.partition
    assert len(after) == 7
    statuses = {r["id"]: r["status"] for r in cdc_json("list", *svc)["rows"]}
    assert statuses == {
        ids["not_json"]: "replayed",
        ids["bad_utf8"]: "replayed",
        ids["decode_failed"]: "new",
        ids["store_rejected"]: "new",
    }
    shown = cdc_json("show", pick[0], *svc)
    assert [h["state"] for h in shown["history"]] == ["replaying", "replayed"]
    assert "@" in shown["status_changed_by"] and shown["status_changed_at"]

    # A second replay of the same dead letters produces nothing.
    again = cdc_json("replay", *pick, "--execute", *svc)
    assert again["done"] == []
    assert {s["id"]: s["reason"] for s in again["skipped"]} == dict.fromkeys(
        pick, "already replayed"
    )
    assert "skipped (already replayed)" in cdc("replay", *pick, "--execute", *svc).stdout

    # discard: a dry run first, then --code decode_failed with a reason.
    dry = cdc_json("discard", "--all", "--code", "decode_failed", *svc)
    assert [r["id"] for r in dry["done"]] == [ids["decode_failed"]]
    gone = cdc_json(
        "discard",
        "--all",
        "--code",
        "decode_failed",
        "--reason",
        "decoder bug, fixed in 1.4.2",
        "--execute",
        *svc,
    )
    assert [r["id"] for r in gone["done"]] == [ids["decode_failed"]]
    assert "decoder bug, fixed in 1.4.2" in cdc("show", ids["decode_failed"], *svc).stdout
    assert cdc_json("show", ids["decode_failed"], *svc)["status"] == "discarded"

    # replay --all: only the one still new; then nothing is left, a third replay does nothing.
    rest = cdc_json("replay", "--all", "--execute", *svc)
    assert [r["id"] for r in rest["done"]] == [ids["store_rejected"]]
    final = cdc_json("replay", "--all", "--execute", *svc)
    assert final["done"] == []
    assert sorted(s["reason"] for s in final["skipped"]) == [
        "already discarded",
        "already replayed",
        "already replayed",
        "already replayed",
    ]
    records = read(kafka_bootstrap, topic)
    assert len(records) == 8 and all(len(c) == 1 for c in replays(records).values())
    missing = cdc_json("replay", "0:424242", "--execute", *svc, code=1)
    assert missing["skipped"] == [
        {"id": "0:424242", "status": None, "reason": "no such dead letter"}
    ]
    summary = cdc_json("list", *svc)["summary"]
    assert sorted((s["code"], s["status"]) for s in summary) == [
        ("bad_utf8", "replayed"),
        ("decode_failed", "discarded"),
        ("not_json", "replayed"),
        ("store_rejected", "replayed"),
    ]


# -- dead letters written as the runtime's DLQ producer writes them --------------------------


def dead_letters_in(
    bootstrap: str, dlq: str, topic: str, n: int, service: str = "stats-aggregator"
) -> None:
    """``n`` dead letters of ``topic`` (offsets 0..n-1) in ``dlq``, as the runtime writes them
    (``consumer_runtime.dlq_record``: key, value, headers)."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(n):
        key, value, headers = dlq_record(
            DeadLetter(
                topic=topic,
                partition=0,
                offset=i,
                key=f"k{i}".encode(),
                value=f"junk {i}".encode(),
                headers=(("n", str(i).encode()),),
                timestamp_ms=int(time.time() * 1000),
                code="not_json",
                message="not JSON",
                exception_class="cdc_events.ParseError",
            ),
            service,
        )
        producer.produce(dlq, key=key, value=value, headers=headers)
    assert producer.flush(30) == 0


_CLI = "from cdc_cli import main; main()"


def test_racing_replays_produce_each_dead_letter_once(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique_id: str
) -> None:
    n = 250
    topic = make_topic(3, name=f"dlqtest-{unique_id}.orders")
    dlq = make_topic(2, name=f"stats-aggregator-{unique_id}.dlq")
    dead_letters_in(kafka_bootstrap, dlq, topic, n)
    argv = [sys.executable, "-c", _CLI, "dlq", "replay", "--all", "--execute", "--json"]
    argv += ["--service", "stats-aggregator", "--dlq-topic", dlq, "--bootstrap", kafka_bootstrap]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    done = [[r["id"] for r in orjson.loads(out)["done"]] for out in outputs]
    print(f"racing replays: {len(done[0])} + {len(done[1])} dead letters")
    assert not set(done[0]) & set(done[1])
    assert len(done[0]) + len(done[1]) == n
    copies = replays(read(kafka_bootstrap, topic))
    assert len(copies) == n and all(len(c) == 1 for c in copies.values())
    # Everything is replayed now: another replay produces nothing.
    third = subprocess.run(argv, stdout=subprocess.PIPE, text=True, timeout=120, check=True)
    assert orjson.loads(third.stdout)["done"] == []
    assert len(read(kafka_bootstrap, topic)) == n


class _StatusFailsAfterProduce:
    """A real publisher whose status write after the replay's produce is lost: the replay is
    cut off between producing and recording it."""

    def __init__(self, inner: Publisher, dlq: str) -> None:
        self.inner = inner
        self.status_topic = f"{dlq}.status"
        self.produced = False

    def send(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        if topic == self.status_topic and self.produced:
            from consumer_runtime import RetryableError

            raise RetryableError("simulated: the status write timed out")
        self.inner.send(topic, records)
        self.produced = self.produced or topic != self.status_topic

    def close(self) -> None:
        self.inner.close()


def test_a_replay_cut_off_after_producing_is_settled_without_a_second_copy(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique_id: str
) -> None:
    topic = make_topic(2, name=f"dlqtest-{unique_id}.orders")
    dlq = make_topic(1, name=f"analytics-flusher-{unique_id}.dlq")
    dead_letters_in(kafka_bootstrap, dlq, topic, 3, service="analytics-flusher")
    settings = RuntimeSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topics=("-",))
    with KafkaAdmin({"bootstrap.servers": kafka_bootstrap}) as admin:
        cut = TopicDlq(
            admin,
            dlq,
            lambda: _StatusFailsAfterProduce(create_publisher(settings, "test"), dlq),
            "crash@test",
        )
        try:
            outcome = cut.replay(Selection(), execute=True)
        finally:
            cut.close()
    assert outcome.in_doubt and outcome.done == [] and len(outcome.failed) == 3
    assert len(replays(read(kafka_bootstrap, topic))) == 3
    svc = ("--service", "analytics-flusher", "--dlq-topic", dlq, "--bootstrap", kafka_bootstrap)
    assert {r["status"] for r in cdc_json("list", *svc)["rows"]} == {"replaying"}
    assert "in doubt" in cdc("replay", "--all", *svc).stdout  # the dry run says so

    settled = cdc_json("replay", "--all", "--execute", *svc)
    assert settled["done"] == [] and settled["error"] is None
    assert sorted(r["id"] for r in settled["recovered"]) == ["0:0", "0:1", "0:2"]
    assert all(r["found_at"].startswith(f"{topic}[") for r in settled["recovered"])
    copies = replays(read(kafka_bootstrap, topic))
    assert len(copies) == 3 and all(len(c) == 1 for c in copies.values())
    assert {r["status"] for r in cdc_json("list", *svc)["rows"]} == {"replayed"}
    assert cdc_json("replay", "--all", "--execute", *svc)["done"] == []


def test_an_unreachable_broker_and_no_broker_are_named() -> None:
    result = cdc("list", "--service", SERVICE, code=2)
    assert "--bootstrap" in result.stderr and "make up" in result.stderr
    result = cdc(
        "replay", "--all", "--service", SERVICE, "--bootstrap", "127.0.0.1:1", "--timeout", "1",
        code=2,
    )  # fmt: skip
    assert "cannot reach Kafka at 127.0.0.1:1" in result.stderr


def test_the_event_store_is_the_default_and_keeps_its_table() -> None:
    """`cdc dlq list` without --service is the event store's command on its table."""
    result = cdc("list", "--database-url", "postgresql://u:secret@127.0.0.1:1/db", code=2)
    assert "cannot reach the event store" in result.stderr and "secret" not in result.stderr
