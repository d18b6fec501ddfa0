"""Shared pieces of the search indexer's integration tests: the index table of a test, the
indexer as a child process, an in-process runtime, and the comparison with ground truth."""

from __future__ import annotations

import os
import random
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from consumer_runtime import CommitStrategy, Runtime
from devstack import AwsEmulator, Broker, ManagedProcess, PostgresServer, free_port
from prometheus_client.parser import text_string_to_metric_families
from search_indexer import (
    IndexTable,
    SearchIndexSink,
    Settings,
    decode,
    prepare_table,
)
from search_indexer.verify import diff_index, expected_index
from sink_kit.aws import make_client

PRODUCTS_TOPIC = "dbserver1.public.products"
# Group joins on the embedded broker wait for departed members' session timeout (devstack README).
CONSUMER_EXTRA = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


@pytest.fixture
def index_table(aws_emulator: AwsEmulator, aws_env: dict[str, str], unique_id: str) -> IndexTable:
    client = make_client("dynamodb", "us-east-1", aws_emulator.endpoint_url)
    name = f"psi-{unique_id}"
    prepare_table(client, name)
    return IndexTable(client, name)


@pytest.fixture
def products_topic(kafka_broker: Broker, debezium_relay: Any) -> str:
    # The relay creates the topic with its first change; creating it up front (same partition
    # count) lets an indexer subscribe before that.
    kafka_broker.create_topics([PRODUCTS_TOPIC], 3)
    return PRODUCTS_TOPIC


@pytest.fixture
def shop_conn(source_postgres: PostgresServer) -> Iterator[Any]:
    conn = source_postgres.connect("shop")
    conn.autocommit = True
    yield conn
    conn.close()


_ADJ = ("Classic", "Crème", "Café", "Nordic", "Rustic", "Smart", "Eco", "Deluxe")
_NOUN = ("Espresso Cup", "Teapot", "Water Bottle", "Desk Lamp", "Candle", "Yoga Mat", "Chairs")
_WORDS = ("ceramic", "naïve", "handmade", "blue", "stainless", "steel", "gift", "café", "cups")


def add_products(conn: Any, n: int, seed: int = 7) -> None:
    """A catalogue to search in (the simulator adds products only now and then)."""
    rng = random.Random(seed)
    with conn.cursor() as cur:
        for _ in range(n):
            cur.execute(
                "INSERT INTO products (name, description, price, stock) VALUES (%s, %s, %s, %s)",
                (
                    f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}",
                    " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 10))),
                    Decimal(rng.randint(99, 15000)) / 100,
                    rng.choice((0, 0, 3, 25, 80)),
                ),
            )


def indexer_env(
    bootstrap: str, group: str, table: str, aws: AwsEmulator, health_port: int, **extra: str
) -> dict[str, str]:
    return {
        **os.environ,
        **aws.env,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_GROUP_ID": group,
        "KAFKA_TOPICS": PRODUCTS_TOPIC,
        "KAFKA_CONSUMER_EXTRA": orjson.dumps(CONSUMER_EXTRA).decode(),
        "DYNAMODB_TABLE": table,
        "HEALTH_PORT": str(health_port),
        "BATCH_MAX_WAIT_MS": "200",
        "RETRY_MAX_S": "2",
        "LOG_FORMAT": "console",
        **extra,
    }


@dataclass
class IndexerProcess:
    process: ManagedProcess
    health_port: int

    def metric(self, name: str, **labels: str) -> float:
        """A counter summed over the other labels; 0 while the process is not serving yet."""
        try:
            url = f"http://127.0.0.1:{self.health_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return 0.0
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total


@pytest.fixture
def start_indexer(
    kafka_bootstrap: str, aws_emulator: AwsEmulator, tmp_path: Path
) -> Iterator[Callable[..., IndexerProcess]]:
    started: list[ManagedProcess] = []

    def _start(group: str, table: str, **extra: str) -> IndexerProcess:
        port = free_port()
        env = indexer_env(kafka_bootstrap, group, table, aws_emulator, port, **extra)
        proc = ManagedProcess(
            f"search-indexer-{group}",
            [sys.executable, "-m", "search_indexer"],
            tmp_path / f"indexer-{group}.log",
            env=env,
        ).start()
        started.append(proc)
        return IndexerProcess(proc, port)

    yield _start
    for proc in started:
        proc.stop(timeout=30)
        if proc.returncode not in (0, None):
            print(proc.log_tail(80))


class InProcessIndexer:
    """The service's runtime in a thread of the test process (its sink's counters readable)."""

    def __init__(self, bootstrap: str, group: str, table: str, aws: AwsEmulator) -> None:
        settings = Settings(
            kafka_bootstrap_servers=bootstrap,
            kafka_group_id=group,
            kafka_topics=(PRODUCTS_TOPIC,),
            kafka_consumer_extra=CONSUMER_EXTRA,
            dynamodb_table=table,
            aws_endpoint_url=aws.endpoint_url,
            aws_region="us-east-1",
            batch_max_wait_ms=200,
        )
        self.sink = SearchIndexSink.from_settings(settings)
        self.runtime: Runtime[Any] = Runtime(
            "search-indexer", settings, decode, self.sink, CommitStrategy.COMMIT_AFTER_FLUSH
        )
        self.thread = threading.Thread(target=self.runtime.run, daemon=True)

    def start(self) -> InProcessIndexer:
        self.thread.start()
        return self

    def handled(self) -> float:
        registry = self.runtime.metrics.registry
        total = 0.0
        for family in registry.collect():
            for sample in family.samples:
                if sample.name == "cdc_messages_total":
                    total += sample.value
        return total

    def stop(self) -> None:
        self.runtime.stop()
        self.thread.join(30)


# -- ground truth --------------------------------------------------------------------------------


def index_diff(table: IndexTable, conn: Any) -> list[str]:
    """Differences between the index and the source table (empty when equal): the verifier's
    comparison (``search_indexer.verify.diff_index``), spelled out item by item."""
    diff = diff_index(table, conn)
    if diff.markers_without_ttl:
        raise AssertionError(f"removal markers without ttl: {diff.markers_without_ttl[:5]}")
    out = [f"product {pid} missing from the index" for pid in diff.missing]
    out += [f"product {pid} indexed but not in the source table" for pid in diff.extra]
    out += [f"product {p}: index {diff.have(p)} != source {diff.want(p)}" for p in diff.differ]
    for token, pid in diff.orphans:
        gone = pid in diff.deleted or pid not in diff.docs
        why = "deleted product" if gone else "token not in product"
        out.append(f"extra posting {token!r} -> {pid} ({why})")
    out += [f"missing posting {token!r} -> {pid}" for token, pid in diff.absent]
    return out


def wait_for_truth(table: IndexTable, conn: Any, timeout: float = 120.0) -> None:
    """Wait until the index equals the source exactly (products and postings).

    Each comparison is a full consistent scan, and the emulator serves one request at a time:
    on a busy machine a scan can take seconds, and polling every second would starve the
    indexer of the emulator (its requests time out after 2 s) so that the index never catches
    up. The pause between comparisons is therefore at least three times the last one.
    """
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        diff = index_diff(table, conn)
        if not diff:
            return
        took = time.monotonic() - started
        if time.monotonic() > deadline:
            pytest.fail(f"{len(diff)} differences after {timeout:.0f}s:\n" + "\n".join(diff[:40]))
        time.sleep(max(1.0, 3 * took))


@pytest.fixture
def helpers() -> SimpleNamespace:
    """The helpers above, handed to tests as a fixture (test modules cannot import conftest)."""
    return SimpleNamespace(
        InProcessIndexer=InProcessIndexer,
        add_products=add_products,
        expected_index=expected_index,
        index_diff=index_diff,
        wait_for_truth=wait_for_truth,
    )
