"""Pure parts of `cdc dlq` for topic-based dead letters: ids, headers as the runtime writes
them, the replayed record, the status fold (races, take-overs, compaction), plans, routing to a
service's own store, and the replay/discard protocol on an in-memory cluster (claims racing,
a replay cut off before and after producing, a failing broker)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from cdc_cli import app
from cdc_cli._dlq import dlq_topic_of, store_commands, take_service
from cdc_cli._dlq_records import (
    REPLAY_CLAIM,
    REPLAY_FROM,
    REPLAY_OFFSET,
    REPLAY_PARTITION,
    REPLAY_TOPIC,
    DeadLetterRecord,
    DlqId,
    dead_letter_of,
    header_value,
    replay_record,
    split_headers,
)
from cdc_cli._dlq_render import exit_code
from cdc_cli._dlq_status import (
    DISCARDED,
    NEW,
    REPLAYED,
    REPLAYING,
    Outcome,
    Selection,
    Skipped,
    StatusBook,
    StatusRecord,
    check_status,
    plan_discard,
    plan_replay,
    restatement,
)
from cdc_cli._dlq_topic import TopicDlq
from consumer_runtime import (
    HEADER_CODE,
    HEADER_TOPIC,
    DeadLetter,
    InMemoryMessage,
    OutgoingRecord,
    RetryableError,
    TopicPartition,
    dlq_record,
)
from typer.testing import CliRunner

SERVICE = "stats-aggregator"
DLQ = "stats-aggregator.dlq"


@pytest.fixture(autouse=True)
def _no_stack_no_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def dead(
    offset: int,
    *,
    value: bytes | None = b"junk",
    key: bytes | None = b"k",
    headers: tuple[tuple[str, bytes | None], ...] = (),
    code: str = "not_json",
    topic: str = "dbserver1.public.orders",
) -> DeadLetter:
    return DeadLetter(
        topic=topic,
        partition=1,
        offset=offset,
        key=key,
        value=value,
        headers=headers,
        timestamp_ms=1_700_000_000_000,
        code=code,
        message="not JSON: expecting value",
        exception_class="cdc_events.ParseError",
    )


def as_dlq_message(
    letter: DeadLetter, dlq_offset: int, max_bytes: int | None = None
) -> InMemoryMessage:
    """The DLQ topic's record of ``letter`` exactly as the runtime writes it."""
    key, value, headers = (
        dlq_record(letter, SERVICE) if max_bytes is None else dlq_record(letter, SERVICE, max_bytes)
    )
    return InMemoryMessage(DLQ, 0, dlq_offset, key, value, tuple(headers), 1_700_000_000_500)


# -- ids and records -------------------------------------------------------------------------


def test_ids_are_partition_colon_offset() -> None:
    assert DlqId.parse("0:17") == DlqId(0, 17)
    assert DlqId.parse(" 2 : 5 ") == DlqId(2, 5)
    assert str(DlqId(3, 9)) == "3:9"
    assert sorted([DlqId(1, 0), DlqId(0, 5), DlqId(0, 1)]) == [
        DlqId(0, 1),
        DlqId(0, 5),
        DlqId(1, 0),
    ]
    for bad in ("17", "a:b", "0:-1", "0:1:2", ""):
        with pytest.raises(ValueError, match="partition>:<offset"):
            DlqId.parse(bad)


def test_a_dead_letter_comes_back_as_the_runtime_received_it() -> None:
    # The record's own headers may use provenance names too: only the trailing block goes.
    own: tuple[tuple[str, bytes | None], ...] = (
        ("trace", b"t-1"),
        ("bin", b"\x00\xff"),
        ("dup", b"a"),
        ("dup", b"b"),
        (HEADER_TOPIC, b"upstream"),
    )
    record = dead_letter_of(as_dlq_message(dead(42, headers=own, value=b"\xc3\x28"), 7))
    assert record.id == DlqId(0, 7)
    assert record.key == b"k" and record.value == b"\xc3\x28"
    assert record.headers == own
    assert record.source == ("dbserver1.public.orders", 1, 42)
    assert record.position == "dbserver1.public.orders[1]@42"
    p = record.provenance
    assert (p.error_code, p.error_type, p.service) == (
        "not_json",
        "cdc_events.ParseError",
        SERVICE,
    )
    assert p.error_message == "not JSON: expecting value" and not p.truncated
    assert record.not_replayable() is None
    summary = record.summary()
    assert summary["id"] == "0:7" and summary["header_count"] == 5
    full = record.to_dict()
    assert full["value"] == {"size": 2, "base64": "wyg=", "text": None}
    assert [h["name"] for h in full["provenance_headers"]][-1] == HEADER_CODE


def test_the_runtime_writes_a_null_header_value_as_empty() -> None:
    record = dead_letter_of(as_dlq_message(dead(1, headers=(("nul", None),)), 0))
    assert record.headers == (("nul", b""),)


def test_a_cut_record_is_shown_but_not_replayable() -> None:
    big = dead(3, value=b"v" * 5000)
    record = dead_letter_of(as_dlq_message(big, 0, max_bytes=2000))
    assert record.provenance.truncated
    assert record.provenance.original_size == "1,5000"
    assert record.provenance.original_sha256 == hashlib.sha256(b"k" + b"v" * 5000).hexdigest()
    assert record.value is not None and len(record.value) < 2000
    why = record.not_replayable()
    assert why is not None and "cdc replay" in why and "dbserver1.public.orders[1]@3" in why


def test_a_record_without_provenance_is_not_replayable() -> None:
    foreign = InMemoryMessage(DLQ, 0, 4, b"k", b"v", (("a", b"1"),), 5)
    record = dead_letter_of(foreign)
    assert record.source is None and record.headers == (("a", b"1"),)
    assert record.position == "?"
    assert "not written by the consumer runtime" in (record.not_replayable() or "")
    assert split_headers((("a", b"1"), (HEADER_TOPIC, b"t"))) == (
        (("a", b"1"),),
        ((HEADER_TOPIC, b"t"),),
    )


def test_the_replayed_record_carries_the_original_position_and_where_it_came_from() -> None:
    record = dead_letter_of(as_dlq_message(dead(42, headers=(("h", b"1"),)), 7))
    out = replay_record(record, DLQ, "claim-1")
    assert (out.key, out.value) == (b"k", b"junk")
    assert list(out.headers) == [
        ("h", b"1"),
        (REPLAY_TOPIC, b"dbserver1.public.orders"),
        (REPLAY_PARTITION, b"1"),
        (REPLAY_OFFSET, b"42"),
        (REPLAY_FROM, b"stats-aggregator.dlq/0:7"),
        (REPLAY_CLAIM, b"claim-1"),
    ]
    # That record dead-lettered again (at its new position) and replayed: the position stays
    # the first one, from and claim are replaced.
    again = dead(900, headers=tuple(out.headers))
    out2 = replay_record(dead_letter_of(as_dlq_message(again, 8)), DLQ, "claim-2")
    assert [h for h in out2.headers if h[0] in (REPLAY_TOPIC, REPLAY_OFFSET)] == [
        (REPLAY_TOPIC, b"dbserver1.public.orders"),
        (REPLAY_OFFSET, b"42"),
    ]
    assert header_value(out2.headers, REPLAY_FROM) == b"stats-aggregator.dlq/0:8"
    assert [k for k, _ in out2.headers].count(REPLAY_CLAIM) == 1


# -- the status fold -------------------------------------------------------------------------

A = DlqId(0, 1)


def st(state: str, claim: str, supersedes: str | None = None, **kw: str) -> StatusRecord:
    return StatusRecord(
        A, state, claim, "op@host", "2026-01-01T00:00:00Z", supersedes=supersedes, **kw
    )


def test_status_records_round_trip_and_bad_ones_are_ignored() -> None:
    record = st(DISCARDED, "c1", reason="test data")
    key, value = record.encode()
    assert key == b"0:1"
    assert orjson.loads(value)["reason"] == "test data"
    assert StatusRecord.decode(key, value, 3, 99) == StatusRecord(
        A, DISCARDED, "c1", "op@host", "2026-01-01T00:00:00Z", reason="test data", offset=3,
        timestamp_ms=99,
    )  # fmt: skip
    assert StatusRecord.decode(b"0:1", b"not json") is None
    assert StatusRecord.decode(b"x", value) is None
    assert StatusRecord.decode(b"0:1", None) is None  # a tombstone changes nothing
    assert StatusRecord.decode(b"0:1", orjson.dumps({"state": "new", "claim": "c"})) is None
    book = StatusBook()
    book.apply_all([None, StatusRecord.decode(key, value)])
    assert book.unreadable == 1 and book.state(A) == DISCARDED


def test_the_first_claim_wins_and_only_its_holder_finishes_it() -> None:
    book = StatusBook()
    assert book.state(A) == NEW
    assert book.apply(st(REPLAYING, "c1"))
    assert not book.apply(st(REPLAYING, "c2"))  # lost the race
    assert not book.apply(st(DISCARDED, "c3"))  # discard only from new
    assert not book.apply(st(REPLAYED, "c2"))  # not its claim
    assert book.holds(A, "c1", REPLAYING)
    assert book.apply(st(REPLAYED, "c1"))
    assert not book.apply(st(REPLAYING, "c4", supersedes="c1"))  # final
    assert book.state(A) == REPLAYED and len(book.history[A]) == 6


def test_a_stale_claim_is_taken_over_once() -> None:
    book = StatusBook()
    book.apply(st(REPLAYING, "c1"))
    assert book.apply(st(REPLAYING, "c2", supersedes="c1"))
    assert not book.apply(st(REPLAYING, "c3", supersedes="c1"))  # a second take-over lost
    assert not book.apply(st(REPLAYED, "c1"))  # the old claimant woke up too late
    assert book.apply(st(REPLAYED, "c2"))


def test_a_restated_record_changes_nothing_and_survives_compaction_alone() -> None:
    book = StatusBook()
    book.apply(st(DISCARDED, "c1", reason="r"))
    assert not book.apply(restatement(book.current[A]))
    book = StatusBook()
    book.apply(st(REPLAYING, "c1"))
    assert not book.apply(restatement(book.current[A]))
    assert book.holds(A, "c1", REPLAYING)
    # After compaction only the latest record of a key is left: it is the state.
    for latest in (st(REPLAYED, "c9"), st(REPLAYING, "c9", supersedes="c8")):
        alone = StatusBook()
        assert alone.apply(latest)
        assert alone.state(A) == latest.state


def test_check_status() -> None:
    assert check_status("ALL") is None
    assert check_status("replaying") == REPLAYING
    with pytest.raises(ValueError, match="new, replaying, replayed, discarded, all"):
        check_status("bogus")


# -- plans -----------------------------------------------------------------------------------


def records(*letters: DeadLetter) -> list[DeadLetterRecord]:
    return [dead_letter_of(as_dlq_message(d, i)) for i, d in enumerate(letters)]


def test_a_replay_plan_skips_what_is_done_in_doubt_cut_or_a_copy() -> None:
    rs = records(
        dead(1),  # 0:0 replayed
        dead(2),  # 0:1 discarded
        dead(3),  # 0:2 in doubt
        dead(4, value=b"v" * 5000),  # 0:3 (cut below)
        dead(5),  # 0:4 new
        dead(5),  # 0:5 the same source record again
        dead(1),  # 0:6 a copy of a replayed one
        dead(6, code="bad_utf8"),  # 0:7 new, other code
    )
    rs[3] = dead_letter_of(as_dlq_message(dead(4, value=b"v" * 5000), 3, max_bytes=2000))
    book = StatusBook()
    for i, state in ((0, REPLAYED), (1, DISCARDED), (2, REPLAYING)):
        book.apply(StatusRecord(DlqId(0, i), state, "c", "op@h", "t"))
    plan = plan_replay(rs, book, Selection())
    assert [str(r.id) for r in plan.act] == ["0:4", "0:7"]
    assert [str(r.id) for r, _ in plan.in_doubt] == ["0:2"]
    reasons = {s.id: s.reason for s in plan.skipped}
    assert reasons["0:0"] == "already replayed" and reasons["0:1"] == "already discarded"
    assert reasons["0:3"].startswith("not replayable")
    assert reasons["0:5"] == "the same source record as 0:4 (in this replay): replayed once"
    assert reasons["0:6"] == "the same source record as 0:0 (replayed): replayed once"
    only = plan_replay(rs, book, Selection(ids=(DlqId(0, 7), DlqId(5, 5)), code="bad_utf8"))
    assert [str(r.id) for r in only.act] == ["0:7"]
    assert only.skipped == [Skipped("5:5", None, "no such dead letter")]
    by_code = plan_replay(rs, book, Selection(code="bad_utf8", topic="dbserver1.public.orders"))
    assert [str(r.id) for r in by_code.act] == ["0:7"]
    discard = plan_discard(rs, book, Selection())
    assert [str(r.id) for r in discard.act] == ["0:3", "0:4", "0:5", "0:6", "0:7"]
    assert "cdc dlq replay" in {s.id: s.reason for s in discard.skipped}["0:2"]


def test_exit_codes() -> None:
    assert exit_code(Outcome(execute=True)) == 0
    assert exit_code(Outcome(execute=True, skipped=[Skipped("0:1", None, "no such")])) == 1
    assert exit_code(Outcome(execute=True, skipped=[Skipped("0:1", "replayed", "done")])) == 0
    assert exit_code(Outcome(execute=True, error="boom")) == 1
    assert exit_code(Outcome(execute=True, interrupted=True, error="interrupted")) == 130


# -- options and routing ---------------------------------------------------------------------


def test_the_service_option_is_taken_out_for_a_service_store() -> None:
    assert take_service(["0:1", "--service", "x", "--json"]) == ("x", ["0:1", "--json"])
    assert take_service(["--service=x"]) == ("x", [])
    assert take_service(["--json"]) == ("event-store-writer", ["--json"])
    assert take_service(["--", "--service", "x"]) == (
        "event-store-writer",
        ["--", "--service", "x"],
    )
    assert take_service(["--service"]) == (None, ["--service"])


def test_the_dlq_topic_is_the_runtimes_name_unless_the_service_was_given_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DLQ_TOPIC", "some-other-service.dlq")  # not this service's
    assert dlq_topic_of("search-indexer", {}) == "search-indexer.dlq"
    assert dlq_topic_of("search-indexer", {"DLQ_TOPIC": "custom.dlq"}) == "custom.dlq"


def test_the_event_store_brings_its_own_dlq_commands_the_others_use_their_topic() -> None:
    backend = store_commands("event-store-writer")
    assert backend is not None and set(backend.commands) == {"list", "show", "replay", "discard"}
    assert store_commands("stats-aggregator") is None
    runner = CliRunner()
    own = runner.invoke(app, ["dlq", "list", "--help"])
    assert own.exit_code == 0 and "--database-url" in own.stdout
    explicit = runner.invoke(app, ["dlq", "show", "--service", "event-store-writer", "--help"])
    assert "--database-url" in explicit.stdout
    topic = runner.invoke(app, ["dlq", "replay", "--service", "search-indexer", "--help"])
    assert topic.exit_code == 0
    assert "--database-url" not in topic.stdout and "--takeover-after" in topic.stdout


def test_usage_errors_exit_2() -> None:
    runner = CliRunner()
    for args in (
        ["dlq", "list", "--service", "nope"],
        ["dlq", "show", "17", "--service", SERVICE],
        ["dlq", "replay", "--service", SERVICE],
        ["dlq", "replay", "0:1", "--all", "--service", SERVICE],
        ["dlq", "list", "--service", SERVICE, "--status", "bogus"],
        ["dlq", "list", "--service", SERVICE],  # no broker: no --bootstrap, no stack file
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)


# -- the protocol on an in-memory cluster ----------------------------------------------------


@dataclass
class Cluster:
    """Topics as lists of partitions of ``InMemoryMessage``; what the commands need of it."""

    topics_: dict[str, list[list[InMemoryMessage]]] = field(default_factory=dict)
    clock_ms: int = field(default_factory=lambda: int(time.time() * 1000) - 60_000)
    created: dict[str, Mapping[str, str]] = field(default_factory=dict)

    def add(self, topic: str, partitions: int = 1) -> None:
        self.topics_.setdefault(topic, [[] for _ in range(partitions)])

    def append(self, topic: str, record: OutgoingRecord, partition: int | None = None) -> None:
        self.add(topic)
        parts = self.topics_[topic]
        p = partition if partition is not None else hash(record.key) % len(parts)
        self.clock_ms += 1
        parts[p].append(
            InMemoryMessage(
                topic, p, len(parts[p]), record.key, record.value, record.headers, self.clock_ms
            )
        )

    # KafkaAdmin's methods the commands use
    def topics(self) -> dict[str, int]:
        return {t: len(p) for t, p in self.topics_.items()}

    def partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t in topics for p in range(len(self.topics_[t]))]

    def read(
        self, starts: Mapping[TopicPartition, int], *, max_per_partition: int | None = None
    ) -> list[InMemoryMessage]:
        out = []
        for tp, start in sorted(starts.items()):
            found = [m for m in self.topics_[tp.topic][tp.partition] if m.offset() >= start]
            out += found[:max_per_partition]
        return out

    def offsets_for_times(
        self, partitions: Sequence[TopicPartition], timestamp_ms: int
    ) -> dict[TopicPartition, int | None]:
        out: dict[TopicPartition, int | None] = {}
        for tp in partitions:
            msgs = self.topics_[tp.topic][tp.partition]
            out[tp] = next((m.offset() for m in msgs if m.timestamp()[1] >= timestamp_ms), None)
        return out

    def create_topic(
        self, name: str, *, partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> bool:
        if name in self.topics_:
            return False
        self.add(name, partitions)
        self.created[name] = dict(config or {})
        return True


@dataclass
class Publisher:
    cluster: Cluster
    fail_topics: set[str] = field(default_factory=set)
    fail_after: int | None = None  # sends before failing
    sends: int = 0

    def send(self, topic: str, records: Sequence[OutgoingRecord]) -> None:
        self.sends += 1
        if topic in self.fail_topics or (
            self.fail_after is not None and self.sends > self.fail_after
        ):
            raise RetryableError(f"{topic!r} did not acknowledge (simulated)")
        for r in records:
            self.cluster.append(topic, r)

    def close(self) -> None:
        return None


def cluster_with_dead_letters(n: int = 3) -> Cluster:
    cluster = Cluster()
    cluster.add("dbserver1.public.orders", 2)
    cluster.add(DLQ, 1)
    for i in range(n):
        key, value, headers = dlq_record(dead(10 + i, key=f"k{i}".encode()), SERVICE)
        cluster.append(DLQ, OutgoingRecord(key, value, tuple(headers)), partition=0)
    return cluster


def command(cluster: Cluster, who: str = "op@host", **publisher: object) -> TopicDlq:
    pub = Publisher(cluster, **publisher)  # type: ignore[arg-type]
    return TopicDlq(cluster, DLQ, lambda: pub, who)  # type: ignore[arg-type]


def replays(cluster: Cluster) -> list[InMemoryMessage]:
    return [m for p in cluster.topics_["dbserver1.public.orders"] for m in p]


def test_replay_and_discard_on_the_topic_once_each() -> None:
    cluster = cluster_with_dead_letters(3)
    dry = command(cluster).replay(Selection(), execute=False)
    assert [str(d.id) for d in dry.done] == ["0:0", "0:1", "0:2"] and not replays(cluster)
    assert "stats-aggregator.dlq.status" not in cluster.topics_

    done = command(cluster).replay(Selection(ids=(DlqId(0, 0), DlqId(0, 1))), execute=True)
    assert [str(d.id) for d in done.done] == ["0:0", "0:1"] and done.error is None
    assert cluster.created["stats-aggregator.dlq.status"]["cleanup.policy"] == "compact"
    assert sorted(header_value(m.headers() or [], REPLAY_OFFSET) for m in replays(cluster)) == [
        b"10",
        b"11",
    ]
    again = command(cluster).replay(Selection(), execute=True)
    assert [str(d.id) for d in again.done] == ["0:2"]
    assert {s.id: s.reason for s in again.skipped} == dict.fromkeys(
        ["0:0", "0:1"], "already replayed"
    )
    nothing = command(cluster).replay(Selection(), execute=True)
    assert nothing.done == [] and len(replays(cluster)) == 3

    more = cluster_with_dead_letters(2)
    gone = command(more, "me@h").discard(Selection(), execute=True, reason="test data")
    assert [str(d.id) for d in gone.done] == ["0:0", "0:1"]
    book = command(more).load_statuses()
    assert book.current[DlqId(0, 0)].reason == "test data"
    assert book.current[DlqId(0, 0)].by == "me@h"
    assert command(more).replay(Selection(), execute=True).done == []


def test_a_racing_claim_loses_and_the_winner_is_written_again() -> None:
    cluster = cluster_with_dead_letters(2)
    slow, fast = command(cluster, "slow@h"), command(cluster, "fast@h")
    # slow read everything as new, then fast replays 0:0 before slow's claim lands.
    slow.records()
    slow.load_statuses()
    fast_outcome = fast.replay(Selection(ids=(DlqId(0, 0),)), execute=True)
    assert [str(d.id) for d in fast_outcome.done] == ["0:0"]
    outcome = Outcome(execute=True)
    work = [(r, None) for r in slow.records()]
    assert slow._replay_chunk(work, outcome)
    assert [str(d.id) for d in outcome.done] == ["0:1"]
    assert outcome.skipped[0].id == "0:0" and "replayed by fast@h" in outcome.skipped[0].reason
    assert len(replays(cluster)) == 2  # 0:0 once, by fast
    status = cluster.topics_["stats-aggregator.dlq.status"][0]
    latest = {m.key(): orjson.loads(m.value() or b"") for m in status}
    assert latest[b"0:0"]["state"] == REPLAYED and latest[b"0:0"]["restated"] is True


def test_a_replay_cut_off_after_producing_is_settled_without_a_second_copy() -> None:
    cluster = cluster_with_dead_letters(2)
    # Claims and records acknowledged, then the status write fails: in doubt.
    cut = command(cluster, fail_after=2).replay(Selection(), execute=True)
    assert cut.in_doubt and cut.error is not None and "produced" in cut.error
    assert [str(d.id) for d in cut.failed] == ["0:0", "0:1"]
    assert len(replays(cluster)) == 2
    assert command(cluster).load_statuses().state(DlqId(0, 0)) == REPLAYING

    settled = command(cluster).replay(Selection(), execute=True)
    assert settled.done == [] and settled.error is None
    assert sorted(str(d.id) for d, _ in settled.recovered) == ["0:0", "0:1"]
    assert len(replays(cluster)) == 2
    book = command(cluster).load_statuses()
    assert book.state(DlqId(0, 1)) == REPLAYED
    assert "found in dbserver1.public.orders" in (book.current[DlqId(0, 1)].note or "")


def test_a_replay_cut_off_before_producing_is_taken_over_after_the_delay() -> None:
    cluster = cluster_with_dead_letters(1)
    failed = command(cluster, fail_topics={"dbserver1.public.orders"}).replay(
        Selection(), execute=True
    )
    assert failed.in_doubt and "producing" in (failed.error or "") and not replays(cluster)
    assert exit_code(failed) == 1

    early = command(cluster).replay(Selection(), execute=True, takeover_after_s=300)
    assert early.done == [] and "may still be running" in early.skipped[0].reason
    dry = command(cluster).replay(Selection(), execute=False)
    assert "in doubt" in dry.skipped[0].reason

    late = command(cluster).replay(Selection(), execute=True, takeover_after_s=0)
    assert [str(d.id) for d in late.done] == ["0:0"] and len(replays(cluster)) == 1
    book = command(cluster).load_statuses()
    history = book.history[DlqId(0, 0)]
    assert [r.state for r in history] == [REPLAYING, REPLAYING, REPLAYED]
    assert history[1].supersedes == history[0].claim
    assert command(cluster).replay(Selection(), execute=True, takeover_after_s=0).done == []


def test_a_discard_never_takes_a_dead_letter_being_replayed() -> None:
    cluster = cluster_with_dead_letters(1)
    command(cluster, fail_topics={"dbserver1.public.orders"}).replay(Selection(), execute=True)
    outcome = command(cluster).discard(Selection(), execute=True, reason="x")
    assert outcome.done == [] and "settle it first" in outcome.skipped[0].reason
