"""The Debezium relay process: the real Debezium PostgreSQL connector, embedded, producing to Kafka.

Run as its own process (``python -m devstack.relay CONFIG.json``) because JPype starts one JVM
per process and cannot restart it. Records are produced with the same topic names, keys and
values the Kafka Connect JSON converter writes, partitioned by key with murmur2 like the Java
producer, and a batch is acknowledged to Debezium only after the broker acknowledged every
record of it (so a crash re-emits, never skips). Debezium keeps its source offsets in a file,
so a restart resumes streaming instead of taking a new snapshot.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from devstack._broker import create_topics
from devstack._relay_config import RelayConfig

# How long a batch may wait for broker acknowledgements before the relay gives up and exits
# non-zero (the supervisor restarts it and Debezium re-emits the unacknowledged batch).
_ACK_TIMEOUT_S = 120.0
# Debezium's close() commits offsets and stops the connector; bounded so a stuck JVM cannot
# hold a shutdown forever.
_CLOSE_TIMEOUT_S = 20.0
_STATUS_INTERVAL_S = 0.5


class _Relay:
    def __init__(self, config: RelayConfig) -> None:
        self.config = config
        self.producer = Producer(
            {
                "bootstrap.servers": config.bootstrap_servers,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                # Java's default partitioner: the same key lands on the same partition as it would
                # behind Kafka Connect.
                "partitioner": "murmur2_random",
                "compression.type": "none",
            }
        )
        self.known_topics: set[str] = set()
        self.produced: Counter[str] = Counter()
        self.ops: dict[str, Counter[str]] = {}
        self.snapshot_done = False
        self.started_at = time.time()
        self.last_event_at: float | None = None
        self._errors: list[KafkaError] = []
        self._last_status = 0.0
        # The engine's thread (after each batch) and the main thread (on a timer) both write
        # the status file; one writer at a time, or their temp files collide.
        self._status_lock = threading.Lock()
        self.write_status(state="starting")

    # Called by pydbzengine from a JVM thread with one Debezium batch.
    def handleJsonBatch(self, records: list[Any]) -> None:
        batch: list[tuple[str, bytes | None, bytes | None]] = []
        for record in records:
            topic = str(record.destination())
            key = record.key()
            value = record.value()
            batch.append(
                (
                    topic,
                    None if key is None else str(key).encode(),
                    None if value is None else str(value).encode(),
                )
            )
        new_topics = sorted({t for t, _, _ in batch} - self.known_topics)
        if new_topics:
            create_topics(
                self.config.bootstrap_servers, new_topics, self._partitions_for(new_topics)
            )
            self.known_topics.update(new_topics)
        for topic, key, value in batch:
            self._produce(topic, key, value)
            self._count(topic, value)
        remaining = self.producer.flush(_ACK_TIMEOUT_S)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            raise RuntimeError(
                f"broker did not acknowledge the batch ({remaining} pending, errors: {errors[:3]})"
            )
        self.last_event_at = time.time()
        self.maybe_write_status()

    def _partitions_for(self, topics: list[str]) -> int:
        return self.config.partitions

    def _produce(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, on_delivery=self._on_delivery)
                return
            except BufferError:
                self.producer.poll(0.1)

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err)

    def _count(self, topic: str, value: bytes | None) -> None:
        with self._status_lock:
            self._count_locked(topic, value)

    def _count_locked(self, topic: str, value: bytes | None) -> None:
        self.produced[topic] += 1
        ops = self.ops.setdefault(topic, Counter())
        if value is None:
            ops["tombstone"] += 1
            return
        try:
            doc = orjson.loads(value)
            payload = doc.get("payload", doc) if isinstance(doc, dict) else None
            if isinstance(payload, dict) and "op" in payload:
                ops[str(payload["op"])] += 1
                source = payload.get("source") or {}
                if source.get("snapshot") in ("last", "last_in_data_collection") or (
                    payload["op"] != "r" and self.produced
                ):
                    self.snapshot_done = True
            else:
                ops["other"] += 1
        except orjson.JSONDecodeError:
            ops["other"] += 1

    def maybe_write_status(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_status >= _STATUS_INTERVAL_S:
            self._last_status = now
            self.write_status(state="running")

    def write_status(self, state: str) -> None:
        with self._status_lock:
            self._write_status(state)

    def _write_status(self, state: str) -> None:
        status = {
            "state": state,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "last_event_at": self.last_event_at,
            "snapshot_done": self.snapshot_done,
            "produced": dict(self.produced),
            "ops": {t: dict(c) for t, c in self.ops.items()},
        }
        tmp = self.config.status_file.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(status))
        tmp.replace(self.config.status_file)


def main(argv: list[str]) -> int:
    config = RelayConfig.model_validate_json(Path(argv[1]).read_bytes())
    from pydbzengine import DebeziumJsonEngine

    relay = _Relay(config)
    engine = DebeziumJsonEngine(
        properties=config.debezium_properties(),
        handler=relay,  # type: ignore[arg-type]
        # -Xrs: leave SIGTERM/SIGINT to Python, so shutdown goes through engine.close().
        jvm_opts=["-Xrs", "-Xms64m", "-Xmx512m"],
    )
    stop = threading.Event()
    failure: list[BaseException] = []

    def run_engine() -> None:
        try:
            engine.run()
        except BaseException as exc:
            failure.append(exc)
        finally:
            stop.set()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=run_engine, name="debezium-engine", daemon=True)
    thread.start()
    while not stop.wait(_STATUS_INTERVAL_S):
        relay.maybe_write_status(force=True)
    closer = threading.Thread(target=engine.close, daemon=True)
    closer.start()
    closer.join(_CLOSE_TIMEOUT_S)
    relay.producer.flush(10)
    relay.write_status(state="failed" if failure else "stopped")
    if failure:
        print(f"relay failed: {failure[0]!r}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # The JVM's own threads would keep the process alive: exit explicitly.
    os._exit(1 if failure else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
