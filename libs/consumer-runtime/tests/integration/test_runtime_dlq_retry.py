"""Dead-lettering and retry pauses with the real Kafka client, the runtime in a thread."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from cdc_events import ParseError
from consumer_runtime import (
    HEADER_CLASS,
    HEADER_CODE,
    HEADER_MESSAGE,
    HEADER_OFFSET,
    HEADER_ORIGINAL_SHA256,
    HEADER_ORIGINAL_SIZE,
    HEADER_PARTITION,
    HEADER_SERVICE,
    HEADER_TOPIC,
    HEADER_TRUNCATED,
    BaseSink,
    Batch,
    CommitStrategy,
    HealthServer,
    Message,
    Offsets,
    PermanentError,
    RetryableError,
    Runtime,
    RuntimeSettings,
)
from devstack import free_port, produce, read_topic

GROUP_TIMEOUTS: dict[str, str | int | float | bool] = {
    # tansu: a join waits for the session timeout of departed members; short keeps tests fast.
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
}


def decode(message: Message) -> dict[str, Any]:
    try:
        value = orjson.loads(message.value() or b"")
    except orjson.JSONDecodeError as exc:
        raise ParseError("not_json", f"not JSON: {exc}") from exc
    if "id" not in value:
        raise PermanentError("the record has no id", code="missing_field")
    return value  # type: ignore[no-any-return]


class CollectingSink(BaseSink[dict[str, Any]]):
    def __init__(self, fail_for_s: float = 0.0) -> None:
        self.ids: list[int] = []
        self.fail_for_s = fail_for_s
        self.first_attempt: float | None = None
        self.failures = 0

    def write_batch(self, batch: Batch[dict[str, Any]]) -> Offsets | None:
        now = time.monotonic()
        self.first_attempt = self.first_attempt or now
        if now - self.first_attempt < self.fail_for_s:
            self.failures += 1
            raise RetryableError("sink unavailable (simulated outage)")
        self.ids.extend(r["id"] for r in batch)
        return None


@pytest.fixture
def start_runtime() -> Iterator[Callable[..., Runtime[dict[str, Any]]]]:
    running: list[tuple[Runtime[dict[str, Any]], threading.Thread]] = []
    errors: list[BaseException] = []

    def _start(sink: CollectingSink, **settings: Any) -> Runtime[dict[str, Any]]:
        s = RuntimeSettings(
            kafka_consumer_extra=GROUP_TIMEOUTS, batch_max_wait_ms=100, health_port=0, **settings
        )
        runtime: Runtime[dict[str, Any]] = Runtime(
            "it-service", s, decode, sink, CommitStrategy.COMMIT_AFTER_FLUSH
        )

        def run() -> None:
            try:
                runtime.run()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        running.append((runtime, thread))
        return runtime

    yield _start
    for runtime, thread in running:
        runtime.stop()
        thread.join(30)
        assert not thread.is_alive()
    assert errors == []


def test_malformed_records_go_to_the_dlq_once_and_the_stream_flows(
    start_runtime: Callable[..., Runtime[dict[str, Any]]],
    make_topic: Callable[..., str],
    kafka_bootstrap: str,
    kafka_group: str,
    kit: Any,
) -> None:
    topic = make_topic(3)
    dlq = make_topic(1)
    records: list[tuple[bytes | None, bytes | None]] = []
    bad: dict[bytes, bytes] = {}
    for i in range(300):
        key = f"k{i}".encode()
        if i % 20 == 7:
            value = b'{"id": ' + str(i).encode() + b", broken"
            bad[key] = value
        elif i % 50 == 13:
            value = orjson.dumps({"no_id": i})
            bad[key] = value
        else:
            value = orjson.dumps({"id": i})
        records.append((key, value))
    produce(kafka_bootstrap, topic, records)
    good = {i for i in range(300) if records[i][0] not in bad}

    sink = CollectingSink()
    runtime = start_runtime(
        sink,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topics=(topic,),
        kafka_group_id=kafka_group,
        dlq_topic=dlq,
    )
    kit.wait_until(lambda: set(sink.ids) >= good, 30, "the good records")
    dead = read_topic(kafka_bootstrap, dlq, expected=len(bad), timeout=20)
    runtime.stop()
    time.sleep(1.0)
    dead = read_topic(kafka_bootstrap, dlq, timeout=20, idle=1.0)

    assert sorted(sink.ids) == sorted(good)
    assert len(dead) == len(bad)  # each exactly once
    source = {(r.partition, r.offset): r for r in read_topic(kafka_bootstrap, topic, expected=300)}
    for record in dead:
        assert record.key is not None
        assert record.value == bad[record.key]
        headers = dict(record.headers)
        original = source[(int(headers[HEADER_PARTITION]), int(headers[HEADER_OFFSET]))]
        assert original.key == record.key
        assert headers[HEADER_TOPIC] == topic.encode()
        assert headers[HEADER_SERVICE] == b"it-service"
        if record.value.startswith(b'{"no_id"'):
            assert headers[HEADER_CODE] == b"missing_field"
            assert headers[HEADER_CLASS] == b"consumer_runtime._errors.PermanentError"
        else:
            assert headers[HEADER_CODE] == b"not_json"
            assert headers[HEADER_CLASS] == b"cdc_events._errors.ParseError"
        assert headers[HEADER_MESSAGE]
    sample = runtime.metrics.registry.get_sample_value
    labels = {"service": "it-service", "topic": topic}
    assert sample("cdc_messages_total", {**labels, "outcome": "dlq"}) == len(bad)
    assert sample("cdc_messages_total", {**labels, "outcome": "processed"}) == len(good)


def test_sink_outage_pauses_without_rebalance_or_dlq(
    start_runtime: Callable[..., Runtime[dict[str, Any]]],
    make_topic: Callable[..., str],
    kafka_bootstrap: str,
    kafka_group: str,
    kit: Any,
) -> None:
    topic = make_topic(2)
    dlq = make_topic(1)
    produce(kafka_bootstrap, topic, [(None, orjson.dumps({"id": i})) for i in range(200)])
    outage_s = 20.0
    sink = CollectingSink(fail_for_s=outage_s)
    runtime = start_runtime(
        sink,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topics=(topic,),
        kafka_group_id=kafka_group,
        dlq_topic=dlq,
        retry_initial_s=0.5,
        retry_max_s=3.0,
    )
    server = HealthServer(runtime.health, runtime.metrics.registry, free_port()).start()
    try:
        kit.wait_until(lambda: sink.failures > 0, 30, "the first failed write")
        ready_during: list[int] = []
        live_during: list[int] = []
        assert sink.first_attempt is not None
        while time.monotonic() - sink.first_attempt < outage_s - 1.0:
            ready_during.append(kit.http_get(server.port, "/readyz")[0])
            live_during.append(kit.http_get(server.port, "/livez")[0])
            time.sleep(1.0)
        kit.wait_until(lambda: len(sink.ids) >= 200, 30, "every record after the outage")
        assert kit.http_get(server.port, "/readyz")[0] == 200
        metrics = kit.http_get(server.port, "/metrics")[1]
    finally:
        server.stop()
    assert set(ready_during) == {503}
    assert set(live_during) == {200}
    assert sorted(sink.ids) == list(range(200))
    sample = runtime.metrics.registry.get_sample_value
    assert sample("cdc_rebalances_total", {"service": "it-service", "kind": "assign"}) == 1
    assert sample("cdc_rebalances_total", {"service": "it-service", "kind": "revoke"}) is None
    assert sample("cdc_rebalances_total", {"service": "it-service", "kind": "lost"}) is None
    retries = sample("cdc_retries_total", {"service": "it-service"})
    assert retries is not None
    assert retries >= 5
    assert "cdc_retries_total" in metrics
    assert read_topic(kafka_bootstrap, dlq, timeout=3, idle=1.0) == []


def test_an_oversized_record_is_dead_lettered_cut_to_fit_and_the_stream_flows(
    start_runtime: Callable[..., Runtime[dict[str, Any]]],
    make_topic: Callable[..., str],
    kafka_bootstrap: str,
    kafka_group: str,
    kit: Any,
) -> None:
    """A record too large for a Kafka record of its own (the parser's ``too_large``) must not
    stall the partition behind a DLQ write that can never succeed."""
    from confluent_kafka import Producer

    topic = make_topic(1)
    dlq = make_topic(1)
    huge = orjson.dumps({"no_id": "x" * 1_200_000})
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 4_000_000})
    producer.produce(topic, key=b"huge", value=huge)
    for i in range(5):
        producer.produce(topic, key=f"k{i}".encode(), value=orjson.dumps({"id": i}))
    assert producer.flush(10) == 0

    sink = CollectingSink()
    start_runtime(
        sink,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topics=(topic,),
        kafka_group_id=kafka_group,
        dlq_topic=dlq,
    )
    kit.wait_until(lambda: sorted(sink.ids) == list(range(5)), 30, "the records after it")
    (record,) = read_topic(kafka_bootstrap, dlq, expected=1, timeout=20)
    headers = dict(record.headers)
    assert headers[HEADER_CODE] == b"missing_field"
    assert headers[HEADER_OFFSET] == b"0"
    assert headers[HEADER_TRUNCATED] == b"true"
    assert headers[HEADER_ORIGINAL_SIZE] == f"4,{len(huge)}".encode()
    assert headers[HEADER_ORIGINAL_SHA256] == hashlib.sha256(b"huge" + huge).hexdigest().encode()
    assert record.key == b"huge"
    assert record.value is not None and huge.startswith(record.value)
    assert 0 < len(record.value) < 1_000_000
