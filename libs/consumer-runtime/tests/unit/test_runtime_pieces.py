"""DLQ headers, settings validation, health state: pure pieces of the runtime."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest
from cdc_events import ParseError
from consumer_runtime import (
    HEADER_CLASS,
    HEADER_CODE,
    HEADER_MESSAGE,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_SERVICE,
    HEADER_TOPIC,
    THROUGHPUT_DEFAULTS,
    BaseSink,
    Batch,
    HealthState,
    InMemoryMessage,
    Offsets,
    PermanentError,
    RecordError,
    RuntimeSettings,
    SettingsError,
    TopicPartition,
    dlq_headers,
)
from consumer_runtime._decode import DecodeBreaker
from consumer_runtime._dlq import dead_letter
from consumer_runtime.testing import ForwardingSink
from pydantic import SecretStr

BASE_ENV = {"KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092", "KAFKA_TOPICS": "a, b ,^dbserver1\\..*"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key, value in BASE_ENV.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def test_dlq_headers_follow_the_connect_convention() -> None:
    message = InMemoryMessage("orders", 2, 41, b"k", b"\xff", (("trace", b"t1"),), 123)
    dead = dead_letter(message, ParseError("bad_utf8", "invalid start byte"))
    headers = dict(dlq_headers(dead, "event-store-writer"))
    assert headers == {
        "trace": b"t1",
        HEADER_TOPIC: b"orders",
        HEADER_PARTITION: b"2",
        HEADER_OFFSET: b"41",
        HEADER_CLASS: b"cdc_events._errors.ParseError",
        HEADER_MESSAGE: b"invalid start byte",
        HEADER_SERVICE: b"event-store-writer",
        HEADER_CODE: b"bad_utf8",
    }
    assert HEADER_TOPIC == "__connect.errors.topic"
    assert HEADER_CODE == "__cdc.errors.code"
    assert dead.key == b"k"
    assert dead.value == b"\xff"


def test_the_parsers_error_is_a_record_error_without_the_runtime_importing_it() -> None:
    typed = ParseError("bad_utf8", "invalid start byte")
    catch_all = ParseError.unexpected(OverflowError("year 10000"), "orders.created_at")
    assert isinstance(typed, RecordError)
    assert not typed.catch_all
    assert catch_all.catch_all
    breaker = DecodeBreaker(limit=2)
    for _ in range(5):
        breaker.failed(typed)
        breaker.failed(PermanentError("no id", code="missing_field"))
    assert breaker.in_a_row == 0
    breaker.failed(catch_all)
    assert breaker.in_a_row == 1

    class Lookalike(Exception):
        code = "bad_utf8"  # a code alone, without the marker, is not a record error

    breaker.in_a_row = 0
    breaker.failed(Lookalike())
    assert breaker.in_a_row == 1


def test_long_error_messages_are_truncated_on_a_character_boundary() -> None:
    message = InMemoryMessage("t", 0, 0, None, b"x")
    dead = dead_letter(message, ParseError("too_large", "é" * 10_000))
    value = dict(dlq_headers(dead, "s"))[HEADER_MESSAGE]
    assert len(value) <= 4096
    value.decode()


def test_settings_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("BATCH_SIZE", "1000")
    env.setenv("KAFKA_CONSUMER_EXTRA", '{"fetch.wait.max.ms": 50, "client.rack": "use1-az1"}')
    s = RuntimeSettings.load()
    assert s.kafka_topics == ("a", "b", "^dbserver1\\..*")
    assert s.group_id("search-indexer") == "search-indexer-group"
    assert s.dead_letter_topic("search-indexer") == "search-indexer.dlq"
    cfg = s.consumer_config("search-indexer")
    assert cfg["fetch.wait.max.ms"] == 50
    assert cfg["client.rack"] == "use1-az1"
    assert cfg["queued.max.messages.kbytes"] == THROUGHPUT_DEFAULTS["queued.max.messages.kbytes"]
    assert cfg["partition.assignment.strategy"] == "cooperative-sticky"
    assert cfg["enable.auto.commit"] is False
    # A pattern is among the topics: new matching topics are looked for every 30 s.
    assert cfg["topic.metadata.refresh.interval.ms"] == 30_000
    assert s.shutdown_grace_s == 25.0
    with pytest.raises(Exception, match="frozen"):
        s.batch_size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("BATCH_SIZE", "0", "BATCH_SIZE"),
        ("KAFKA_CONSUMER_EXTRA", "{oops", "KAFKA_CONSUMER_EXTRA"),
        ("KAFKA_SECURITY_PROTOCOL", "TLS", "KAFKA_SECURITY_PROTOCOL"),
        ("KAFKA_TOPICS", " , ", "KAFKA_TOPICS"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
    ],
)
def test_invalid_settings_name_the_variable(
    env: pytest.MonkeyPatch, name: str, value: str, needle: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(SettingsError, match=needle):
        RuntimeSettings.load()


def test_missing_bootstrap_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("KAFKA_TOPICS", "a")
    with pytest.raises(SettingsError, match="KAFKA_BOOTSTRAP_SERVERS"):
        RuntimeSettings.load()


def test_sasl_settings_and_secrets(env: pytest.MonkeyPatch) -> None:
    env.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    env.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    env.setenv("KAFKA_SASL_USERNAME", "svc")
    env.setenv("KAFKA_SASL_PASSWORD", "hunter2")
    s = RuntimeSettings.load()
    assert isinstance(s.kafka_sasl_password, SecretStr)
    assert "hunter2" not in repr(s)
    cfg = s.consumer_config("x")
    assert cfg["sasl.mechanism"] == "SCRAM-SHA-512"
    assert cfg["sasl.password"] == "hunter2"


def test_sasl_without_credentials_fails(env: pytest.MonkeyPatch) -> None:
    env.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    env.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    with pytest.raises(SettingsError, match="KAFKA_SASL_USERNAME"):
        RuntimeSettings.load()


def test_msk_iam_uses_an_oauth_callback(env: pytest.MonkeyPatch) -> None:
    env.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    env.setenv("KAFKA_SASL_MECHANISM", "AWS_MSK_IAM")
    env.setenv("AWS_REGION", "eu-west-1")
    cfg = RuntimeSettings.load().consumer_config("x")
    assert cfg["sasl.mechanism"] == "OAUTHBEARER"
    assert callable(cfg["oauth_cb"])


def test_services_subclass_the_settings(env: pytest.MonkeyPatch) -> None:
    class StoreSettings(RuntimeSettings):
        database_url: SecretStr

    env.setenv("DATABASE_URL", "postgresql://u:p@h/db")
    assert StoreSettings.load().database_url.get_secret_value().endswith("/db")
    env.delenv("DATABASE_URL")
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        StoreSettings.load()


def test_health_state() -> None:
    health = HealthState(liveness_timeout_s=0.05)
    assert health.live()[0]
    assert not health.ready()[0]  # not subscribed yet
    health.subscribed = True
    assert health.ready()[0]  # zero partitions while a join is in progress is normal
    health.retrying = True
    assert health.ready() == (False, "paused: retrying a transient sink failure")
    health.retrying = False
    health.sink_healthy = lambda: False
    assert not health.ready()[0]
    time.sleep(0.06)
    assert not health.live()[0]
    health.tick()
    assert health.live()[0]


def test_a_sinks_own_metrics_are_served_with_the_runtimes() -> None:
    from consumer_runtime import BaseSink, CommitStrategy, Runtime, RuntimeSettings
    from consumer_runtime.testing import InMemoryConsumer, InMemoryDlq
    from prometheus_client import CollectorRegistry, Counter, generate_latest

    class CountingSink(BaseSink[bytes]):
        def __init__(self) -> None:
            self.metrics_registry = CollectorRegistry()
            self.rows = Counter("sink_rows_total", "rows written", registry=self.metrics_registry)

        def write_batch(self, batch: object) -> None:
            self.rows.inc()

    sink = CountingSink()
    settings = RuntimeSettings(kafka_bootstrap_servers="x:1", kafka_topics=("t",))
    runtime = Runtime(
        "svc",
        settings,
        lambda m: m.value(),
        sink,
        CommitStrategy.COMMIT_AFTER_FLUSH,
        client=InMemoryConsumer(),
        dlq=InMemoryDlq(),
    )
    sink.rows.inc(3)
    text = generate_latest(runtime.metrics.registry).decode()
    assert "sink_rows_total 3.0" in text
    assert "cdc_messages_total" in text or "cdc_batch_duration_seconds" in text


class _Recording(BaseSink[int]):
    """Answers every hook with something of its own and records the call."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.tp = TopicPartition("t", 0)

    def write_batch(self, batch: Batch[int]) -> Offsets | None:
        self.calls.append("write_batch")
        return {self.tp: 1}

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> Offsets:
        self.calls.append("stored_offsets")
        return {self.tp: 2}

    def on_assign(self, partitions: Sequence[TopicPartition]) -> None:
        self.calls.append("on_assign")

    def on_revoke(self, partitions: Sequence[TopicPartition]) -> Offsets | None:
        self.calls.append("on_revoke")
        return {self.tp: 3}

    def on_lost(self, partitions: Sequence[TopicPartition]) -> None:
        self.calls.append("on_lost")

    def flush(self) -> Offsets | None:
        self.calls.append("flush")
        return {self.tp: 4}

    def tick(self) -> Offsets | None:
        self.calls.append("tick")
        return {self.tp: 5}

    def close(self) -> None:
        self.calls.append("close")

    def healthy(self) -> bool:
        self.calls.append("healthy")
        return False


def test_forwarding_sink_passes_every_hook_and_its_answer() -> None:
    inner = _Recording()
    sink: ForwardingSink[int] = ForwardingSink(inner)
    tp = [inner.tp]
    answers = [
        sink.write_batch(Batch()),
        sink.stored_offsets(tp),
        sink.on_assign(tp),
        sink.on_revoke(tp),
        sink.on_lost(tp),
        sink.flush(),
        sink.tick(),
        sink.close(),
        sink.healthy(),
    ]
    assert inner.calls == [
        "write_batch", "stored_offsets", "on_assign", "on_revoke", "on_lost", "flush", "tick",
        "close", "healthy",
    ]  # fmt: skip
    assert answers == [
        {inner.tp: 1}, {inner.tp: 2}, None, {inner.tp: 3}, None, {inner.tp: 4}, {inner.tp: 5},
        None, False,
    ]  # fmt: skip


def test_forwarding_sink_without_an_inner_sink_is_the_no_op_sink() -> None:
    sink: ForwardingSink[int] = ForwardingSink(None)
    tp = [TopicPartition("t", 0)]
    assert sink.write_batch(Batch()) is None
    assert sink.stored_offsets(tp) == {}
    assert sink.on_revoke(tp) is None and sink.flush() is None and sink.tick() is None
    assert sink.healthy() is True


def test_the_runtime_sets_how_soon_another_thread_gets_the_interpreter_lock() -> None:
    """``GIL_SWITCH_INTERVAL_MS`` is applied when the runtime starts (process-wide), so a sink's
    I/O thread waits at most that long for the lock after each round trip."""
    import sys
    import threading

    from consumer_runtime import BaseSink, CommitStrategy, Runtime, RuntimeSettings
    from consumer_runtime.testing import InMemoryConsumer, InMemoryDlq, run_until

    seen: list[float] = []
    done = threading.Event()

    class RecordingSink(BaseSink[bytes]):
        def write_batch(self, batch: object) -> None:
            seen.append(sys.getswitchinterval())
            done.set()

    client = InMemoryConsumer()
    client.produce("t", [b"v"])
    settings = RuntimeSettings(
        kafka_bootstrap_servers="x:1",
        kafka_topics=("t",),
        gil_switch_interval_ms=0.25,
        health_port=0,
        batch_max_wait_ms=10,
    )
    before = sys.getswitchinterval()
    try:
        runtime = Runtime(
            "svc",
            settings,
            lambda m: m.value(),
            RecordingSink(),
            CommitStrategy.COMMIT_AFTER_FLUSH,
            client=client,
            dlq=InMemoryDlq(),
        )
        assert run_until(runtime, done, timeout_s=30)
        assert seen and seen[0] == pytest.approx(0.00025)
        default = RuntimeSettings(kafka_bootstrap_servers="x:1", kafka_topics=("t",))
        assert default.gil_switch_interval_ms == 0.1
    finally:
        sys.setswitchinterval(before)


def test_the_metadata_refresh_is_shortened_only_for_a_pattern_and_yields_to_the_extras() -> None:
    def config(topics: tuple[str, ...], **extra: Any) -> dict[str, Any]:
        return RuntimeSettings(
            kafka_bootstrap_servers="x:1", kafka_topics=topics, **extra
        ).consumer_config("svc")

    assert "topic.metadata.refresh.interval.ms" not in config(("orders", "users"))
    assert config(("orders", "^dbserver1\\..*"))["topic.metadata.refresh.interval.ms"] == 30_000
    assert (
        config(("^a.*",), kafka_pattern_refresh_ms=5000)["topic.metadata.refresh.interval.ms"]
        == 5000
    )
    overridden = config(
        ("^a.*",), kafka_consumer_extra={"topic.metadata.refresh.interval.ms": 60_000}
    )
    assert overridden["topic.metadata.refresh.interval.ms"] == 60_000


def test_a_source_time_from_the_future_is_observed_as_zero_latency_not_negative() -> None:
    from consumer_runtime._latency import DurableLatency
    from consumer_runtime._message import TopicPartition

    seen: list[float] = []
    latency = DurableLatency(lambda _topic, seconds: seen.append(seconds))
    tp = TopicPartition("t", 0)
    latency.handed(tp, 1, 4_070_908_800_000)  # 2099: a skewed source clock
    latency.handed(tp, 2, 0)  # 1970
    latency.durable({tp: 2})
    assert seen[0] == 0.0
    assert seen[1] > 1e9
