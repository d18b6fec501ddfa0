"""Bad input in the middle of real traffic: every malformed record lands exactly once in the
dead-letter topic of every service that reads its topic (and in the event store's
``dead_letter_queue`` table) with the parser's error code, and everything else still reaches
every read model."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path

import psutil
import psycopg2
from devstack import Pipeline, flow_checks, read_topic
from devstack.badinput import (
    HEADER_ID,
    KINDS,
    STORE_REFUSED,
    consumers_of,
    discount_injected,
    inject_bad_records,
)
from devstack.verify import report_table
from rich.console import Console

SERVICES = ("event-store-writer", "stats-aggregator", "search-indexer", "analytics-flusher")
SIMULATION_S = 30.0
# Every kind, "oversized" included: a record over the parser's 1 MiB limit is also over a
# Kafka record's default limit, so the runtime cuts it to fit the dead-letter topic (and says
# so in headers) instead of stalling the partition behind a write that cannot succeed.
INJECTED_KINDS = KINDS


def _header(headers: tuple[tuple[str, bytes], ...], name: str) -> str:
    values = [v for k, v in headers if k == name]
    assert len(values) == 1, (name, headers)
    return values[0].decode()


def test_bad_records_are_dead_lettered_once_per_consumer_and_good_ones_flow(
    stack_dir: Path,
) -> None:
    pipeline = Pipeline(stack_dir, rate=100, seed=20261121)
    try:
        pipeline.start()
        started = time.monotonic()
        assert sorted(s.spec.name for s in pipeline.services) == sorted(SERVICES)
        time.sleep(5)  # good records before the bad ones, and after them
        injection = inject_bad_records(
            pipeline.stack.broker.bootstrap, kinds=INJECTED_KINDS, run_id="e2e"
        )
        # Records that parse but that every store reading them refuses (a NUL in their text):
        # isolated by the runtime and dead-lettered with the store's reason.
        refused = inject_bad_records(
            pipeline.stack.broker.bootstrap,
            topics=("dbserver1.public.customers", "user-events"),
            kinds=[STORE_REFUSED],
            count_per_kind=2,
            run_id="e2e-refused",
        )
        records = injection.records + refused.records
        assert injection.skipped == [] and refused.skipped == []
        # every kind into the 4 CDC topics and user-events, and the refused ones
        assert len(records) == len(INJECTED_KINDS) * 5 + 4
        time.sleep(max(0.0, SIMULATION_S - (time.monotonic() - started)))
        ledger = pipeline.stop_simulator()

        # Every committed change reached the broker (the injected records discounted).
        assert pipeline.monitor is not None
        deadline = time.monotonic() + 60
        while True:
            flow = discount_injected(
                flow_checks(pipeline.seeded, ledger, pipeline.monitor.snapshot()), records
            )
            if all(c.ok for c in flow) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert [c for c in flow if not c.ok] == []

        # The good records reached every read model.
        report = pipeline.verify(180)
        if not report.ok:
            Console(width=200).print(report_table(report))
        assert report.ok

        # The services kept running (a poison record must not crash or stall a consumer).
        assert [s.name for s in pipeline.services if not s.process.running] == []

        # Each DLQ holds each injected record of the topics its service reads, exactly once.
        info = pipeline.info()
        for service in SERVICES:
            wanted = {
                (r.topic, r.partition, r.offset): r
                for r in records
                if service in consumers_of(r.topic)
            }
            dlq = read_topic(info.bootstrap, f"{service}.dlq", expected=None, timeout=60, idle=3)
            seen = Counter(
                (
                    _header(m.headers, "__connect.errors.topic"),
                    int(_header(m.headers, "__connect.errors.partition")),
                    int(_header(m.headers, "__connect.errors.offset")),
                )
                for m in dlq
            )
            assert seen == Counter(dict.fromkeys(wanted, 1)), service
            for m in dlq:
                position = (
                    _header(m.headers, "__connect.errors.topic"),
                    int(_header(m.headers, "__connect.errors.partition")),
                    int(_header(m.headers, "__connect.errors.offset")),
                )
                injected = wanted[position]
                assert _header(m.headers, "__cdc.errors.code") == injected.expected_code, (
                    service,
                    injected.kind,
                    injected.topic,
                )
                assert _header(m.headers, "__cdc.errors.service") == service
                assert _header(m.headers, HEADER_ID) == injected.ident
                assert m.key == injected.key
                assert m.value is not None
                if injected.kind == "oversized":
                    # Cut to fit, with the original's size and digest to match it by.
                    assert _header(m.headers, "__cdc.errors.truncated") == "true"
                    assert 0 < len(m.value) < 1_000_000
                    assert _header(m.headers, "__cdc.errors.original.size") == (
                        f"{len(injected.key)},{injected.size}"
                    )
                    original = _header(m.headers, "__cdc.errors.original.sha256")
                    assert original == injected.sha256
                else:  # forwarded as received, byte for byte
                    assert hashlib.sha256(m.key + m.value).hexdigest() == injected.sha256

        # The event store keeps each in its dead_letter_queue table, once, with its code.
        url = info.databases["event-store-writer"].replace(
            "postgresql+psycopg2://", "postgresql://"
        )
        conn = psycopg2.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT topic, kafka_partition, kafka_offset, error_code FROM dead_letter_queue"
                )
                rows = cur.fetchall()
        finally:
            conn.close()
        assert Counter((t, p, o) for t, p, o, _ in rows) == Counter(
            {(r.topic, r.partition, r.offset): 1 for r in records}
        )
        codes = {(r.topic, r.partition, r.offset): r.expected_code for r in records}
        assert {(t, p, o): code for t, p, o, code in rows} == codes
    finally:
        problems = pipeline.close()
    assert problems == []
    leftovers = [
        p.info
        for p in psutil.process_iter(["pid", "cmdline"])
        if any(str(stack_dir) in part for part in (p.info["cmdline"] or []))
    ]
    assert leftovers == []
