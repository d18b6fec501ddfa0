"""SIGTERM with a batch in flight: finish it, commit, exit 0 within the grace period; probes."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack import ManagedProcess, produce

N = 1000
PARTITIONS = 2


def _spawn_slow(
    spawn: Callable[..., tuple[ManagedProcess, int]],
    topic: str,
    group: str,
    out: Path,
    delay: str,
    grace: str,
) -> tuple[ManagedProcess, int]:
    return spawn(
        "consumer",
        topic,
        group,
        SINK_KIND="file",
        SINK_PATH=str(out),
        SINK_DELAY_S=delay,
        BATCH_SIZE="100",
        SHUTDOWN_GRACE_S=grace,
    )


def test_sigterm_finishes_the_batch_commits_and_exits_zero(
    spawn_consumer: Callable[..., tuple[ManagedProcess, int]],
    make_topic: Callable[..., str],
    kafka_bootstrap: str,
    kafka_group: str,
    tmp_path: Path,
    kit: Any,
) -> None:
    topic = make_topic(PARTITIONS)
    produce(kafka_bootstrap, topic, kit.payloads(N))
    out = tmp_path / "sink.txt"
    proc, port = _spawn_slow(spawn_consumer, topic, kafka_group, out, delay="2", grace="10")
    kit.wait_until(lambda: len(kit.file_ids(out)) >= 100, 30, "the first batch")

    assert kit.http_get(port, "/livez")[0] == 200
    status, body = kit.http_get(port, "/readyz")
    assert status == 200, body
    status, metrics = kit.http_get(port, "/metrics")
    assert status == 200
    for name in (
        "cdc_messages_total",
        "cdc_batch_duration_seconds",
        "cdc_consumer_lag",
        "cdc_retries_total",
        "cdc_rebalances_total",
        "cdc_commit_failures_total",
        "cdc_end_to_end_latency_seconds",
    ):
        assert name in metrics, name
    assert 'cdc_messages_total{outcome="processed",service="child"' in metrics

    time.sleep(0.5)  # the second batch is now in its 2 s write
    written_before = len(kit.file_ids(out))
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    code = proc.wait(timeout=15)
    took = time.monotonic() - started
    assert code == 0, proc.log_tail()
    assert took < 10, f"shutdown took {took:.1f}s"
    ids = kit.file_ids(out)
    assert len(ids) > written_before  # the in-flight batch was finished, not dropped
    committed = kit.committed(kafka_bootstrap, kafka_group, topic, PARTITIONS)
    assert sum(max(o, 0) for o in committed.values()) == len(ids)  # all of it, nothing more
    assert sorted(ids) == sorted(set(ids))


def test_watchdog_and_second_signal_bound_the_shutdown(
    spawn_consumer: Callable[..., tuple[ManagedProcess, int]],
    make_topic: Callable[..., str],
    kafka_bootstrap: str,
    kafka_group: str,
    tmp_path: Path,
    kit: Any,
) -> None:
    topic = make_topic(1)
    produce(kafka_bootstrap, topic, kit.payloads(300))
    out = tmp_path / "sink.txt"
    # A sink write that hangs for 60 s: only the watchdog can end the shutdown.
    proc, _ = _spawn_slow(spawn_consumer, topic, kafka_group, out, delay="60", grace="2")
    kit.wait_until(lambda: "partitions assigned" in proc.log_tail(), 30, "the assignment")
    time.sleep(0.5)
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 70, proc.log_tail()
    assert time.monotonic() - started < 6
    assert "overran its grace period" in proc.log_tail()

    second, _ = spawn_consumer(
        "second",
        topic,
        f"{kafka_group}-2",
        SINK_KIND="file",
        SINK_PATH=str(out),
        SINK_DELAY_S="60",
        SHUTDOWN_GRACE_S="20",
    )
    kit.wait_until(lambda: "partitions assigned" in second.log_tail(), 30, "the assignment")
    time.sleep(0.5)
    second.signal(signal.SIGTERM)
    time.sleep(0.3)
    second.signal(signal.SIGTERM)
    assert second.wait(timeout=5) == 128 + signal.SIGTERM
