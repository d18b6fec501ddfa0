"""The loop over the in-memory kit: batching, outcomes, commits, rebalances, retries."""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson
import pytest
from cdc_events import ParseError
from consumer_runtime import (
    BaseSink,
    Batch,
    CommitStrategy,
    DeadLetter,
    DecoderBrokenError,
    Offsets,
    PermanentError,
    RejectedError,
    RetryableError,
    TopicPartition,
)
from consumer_runtime.testing import SinkHarness, run_sink

TP0 = TopicPartition("orders", 0)
TP1 = TopicPartition("orders", 1)


def decode(message: object) -> dict[str, object] | None:
    raw = message.value()  # type: ignore[attr-defined]
    if raw is None:
        return None  # tombstone: nothing to do
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError("not_json", str(exc)) from exc
    if "id" not in value:
        raise PermanentError("no id", code="missing_field")
    return value  # type: ignore[no-any-return]


class ListSink(BaseSink[dict[str, object]]):
    def __init__(self) -> None:
        self.batches: list[Batch[dict[str, object]]] = []
        self.events: list[tuple[str, list[TopicPartition]]] = []
        self.fail_writes = 0
        self.closed = False
        self.stored: dict[TopicPartition, int] = {}

    @property
    def ids(self) -> list[object]:
        return [r["id"] for b in self.batches for r in b]

    def write_batch(self, batch: Batch[dict[str, object]]) -> Offsets | None:
        if self.fail_writes:
            self.fail_writes -= 1
            raise RetryableError("sink down")
        self.batches.append(batch)
        self.stored.update(batch.next_offsets)
        return None

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> Offsets:
        return {tp: self.stored[tp] for tp in partitions if tp in self.stored}

    def on_assign(self, partitions: Sequence[TopicPartition]) -> None:
        self.events.append(("assign", list(partitions)))

    def on_revoke(self, partitions: Sequence[TopicPartition]) -> Offsets | None:
        self.events.append(("revoke", list(partitions)))
        return None

    def on_lost(self, partitions: Sequence[TopicPartition]) -> None:
        self.events.append(("lost", list(partitions)))

    def close(self) -> None:
        self.closed = True


def values(n: int, start: int = 0) -> list[bytes | None]:
    return [orjson.dumps({"id": i}) for i in range(start, start + n)]


def test_batches_are_cut_by_size_and_offsets_are_next_to_read() -> None:
    sink = ListSink()
    harness = run_sink(sink, decode, {"orders": values(25)}, batch_size=10)
    assert [len(b) for b in sink.batches] == [10, 10, 5]
    assert sink.batches[0].next_offsets == {TP0: 10}
    assert harness.committed == {TP0: 25}
    assert sink.ids == list(range(25))
    assert sink.closed


def test_bad_records_are_dead_lettered_and_the_partition_keeps_flowing() -> None:
    sink = ListSink()
    stream = [*values(3), b"{not json", orjson.dumps({"x": 1}), None, *values(2, start=3)]
    harness = run_sink(sink, decode, {"orders": stream}, batch_size=100)
    assert sink.ids == [0, 1, 2, 3, 4]
    assert [(d.offset, d.code) for d in harness.dead_letters] == [
        (3, "not_json"),
        (4, "missing_field"),
    ]
    assert harness.dlq.records[0].topic == "test-service.dlq"
    assert harness.dead_letters[0].value == b"{not json"
    assert harness.dead_letters[0].exception_class == "cdc_events._errors.ParseError"
    # The sink sees the dead letters of its batch (e.g. for a DLQ table).
    assert [d.offset for d in sink.batches[0].dead_letters] == [3, 4]
    assert harness.committed == {TP0: 8}
    m = harness.metric
    assert m("cdc_messages_total", service="test-service", topic="orders", outcome="processed") == 5
    assert m("cdc_messages_total", service="test-service", topic="orders", outcome="dlq") == 2
    assert m("cdc_messages_total", service="test-service", topic="orders", outcome="skipped") == 1


def test_a_batch_of_only_bad_records_still_advances_the_offset() -> None:
    sink = ListSink()
    harness = run_sink(sink, decode, {"orders": [b"x", b"y"]}, strategy=CommitStrategy.SINK_MANAGED)
    assert sink.stored == {TP0: 2}
    assert harness.committed == {TP0: 2}
    assert len(harness.dead_letters) == 2


def test_retryable_sink_error_pauses_retries_and_loses_nothing() -> None:
    sink = ListSink()
    harness = SinkHarness(sink, decode, batch_size=5)
    harness.produce("orders", values(12))
    sink.fail_writes = 3
    readiness: list[bool] = []
    original = harness.loop._sleep_polling

    def spy(seconds: float) -> None:
        readiness.append(harness.health.ready()[0])
        assert harness.consumer.paused == {TP0}
        original(seconds)

    harness.loop._sleep_polling = spy  # type: ignore[method-assign]
    harness.run_until_idle()
    harness.shutdown()
    assert sink.ids == list(range(12))
    assert readiness == [False, False, False]
    assert harness.health.retrying is False
    assert harness.dead_letters == []
    assert harness.metric("cdc_retries_total", service="test-service") == 3
    assert harness.committed == {TP0: 12}


def test_dlq_outage_is_retried_without_duplicates() -> None:
    sink = ListSink()
    harness = SinkHarness(sink, decode)
    harness.produce("orders", [b"bad", *values(2)])
    harness.dlq.fail_next(2)
    harness.run_until_idle()
    assert len(harness.dead_letters) == 1
    assert sink.ids == [0, 1]


def test_unknown_exception_propagates_and_nothing_is_committed() -> None:
    class Broken(ListSink):
        def write_batch(self, batch: Batch[dict[str, object]]) -> Offsets | None:
            raise ValueError("bug")

    sink = Broken()
    harness = SinkHarness(sink, decode)
    harness.produce("orders", values(3))
    with pytest.raises(ValueError, match="bug"):
        harness.poll()
    harness.consumer.close()  # the close after a failure revokes; nothing may be committed
    assert harness.committed == {}
    assert [e for e, _ in sink.events] == ["assign"]


def test_revoke_commits_what_was_written_and_tells_the_sink() -> None:
    sink = ListSink()
    harness = SinkHarness(sink, decode, batch_size=100)
    harness.produce("orders", values(4), partition=0)
    harness.produce("orders", values(4, start=10), partition=1)
    harness.poll()
    harness.consumer.revoke([TP1])
    harness.produce("orders", values(2, start=20), partition=1)  # now someone else's
    harness.run_until_idle()
    assert ("revoke", [TP1]) in sink.events
    assert harness.consumer.assignment == [TP0]
    assert harness.committed == {TP0: 4, TP1: 4}
    assert sorted(sink.ids) == [0, 1, 2, 3, 10, 11, 12, 13]  # type: ignore[type-var]


def test_lost_partitions_commit_nothing() -> None:
    sink = ListSink()
    harness = SinkHarness(sink, decode, batch_size=100)
    harness.produce("orders", values(3), partition=1)
    harness.sink.fail_writes = 1_000_000  # type: ignore[attr-defined]
    original = harness.loop._sleep_polling
    calls = 0

    def lose_during_retry(seconds: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            harness.consumer.lose([TP1])
        original(seconds)

    harness.loop._sleep_polling = lose_during_retry  # type: ignore[method-assign]
    harness.poll()
    assert ("lost", [TP1]) in sink.events
    assert harness.committed == {}
    assert harness.health.retrying is False


def test_sink_managed_resumes_from_the_sinks_offsets_not_the_groups() -> None:
    sink = ListSink()
    sink.stored = {TP0: 7}
    harness = SinkHarness(sink, decode, strategy=CommitStrategy.SINK_MANAGED)
    harness.produce("orders", values(10))
    harness.consumer.committed[TP0] = 2  # stale group offset: the sink knows better
    harness.run_until_idle()
    assert sink.ids == [7, 8, 9]
    assert harness.committed == {TP0: 10}


def test_sink_managed_falls_back_to_the_group_offset() -> None:
    sink = ListSink()
    harness = SinkHarness(sink, decode, strategy=CommitStrategy.SINK_MANAGED)
    harness.produce("orders", values(5))
    harness.consumer.committed[TP0] = 3
    harness.run_until_idle()
    assert sink.ids == [3, 4]


class WindowSink(BaseSink[dict[str, object]]):
    """Holds records until a window of 5 closes; reports durable offsets."""

    def __init__(self) -> None:
        self.held: list[tuple[TopicPartition, int]] = []
        self.written: list[int] = []
        self.durable: dict[TopicPartition, int] = {}

    def write_batch(self, batch: Batch[dict[str, object]]) -> Offsets | None:
        for tp, records in batch.records.items():
            for r in records:
                self.held.append((tp, int(r["id"])))  # type: ignore[call-overload]
        if len(self.held) >= 5:
            return self.flush()
        return self.durable

    def flush(self) -> Offsets | None:
        for tp, i in self.held:
            self.written.append(i)
            self.durable[tp] = i + 1  # ids equal offsets in these tests
        self.held = []
        return dict(self.durable)


def test_commit_after_flush_commits_only_what_the_sink_reports_durable() -> None:
    sink = WindowSink()
    harness = SinkHarness(sink, decode, batch_size=3)
    harness.produce("orders", values(8))
    harness.poll()
    assert harness.committed == {}  # 3 held, nothing durable
    harness.poll()
    assert harness.committed == {TP0: 6}
    harness.poll()
    assert harness.committed == {TP0: 6}  # 2 held
    harness.shutdown()
    assert harness.committed == {TP0: 8}
    assert sink.written == list(range(8))


def test_topic_patterns_select_partitions() -> None:
    sink = ListSink()
    harness = SinkHarness(sink, decode, topics=["^dbserver1\\..*"])
    harness.produce("dbserver1.public.orders", values(2))
    harness.produce("user-events", values(2))
    harness.run_until_idle()
    assert harness.consumer.assignment == [TopicPartition("dbserver1.public.orders", 0)]


def test_latency_and_batch_metrics_are_recorded() -> None:
    class Rec(dict[str, object]):
        source_ts_ms = 1

    def dec(message: object) -> Rec:
        return Rec(orjson.loads(message.value()))  # type: ignore[attr-defined]

    sink = ListSink()
    harness = run_sink(sink, dec, {"orders": values(3)})  # type: ignore[arg-type]
    count = harness.metric(
        "cdc_end_to_end_latency_seconds_count", service="test-service", topic="orders"
    )
    assert count == 1
    assert harness.metric("cdc_batch_duration_seconds_count", service="test-service") == 1


def test_latency_is_observed_when_held_records_become_durable() -> None:
    """A sink that holds records (a window) reports them durable later: the end-to-end
    latency is observed then, not when the batch was handed over."""

    class Rec(dict[str, object]):
        source_ts_ms = int(time.time() * 1000) - 2_000  # committed at the source 2 s ago

    def dec(message: object) -> Rec:
        return Rec(orjson.loads(message.value()))  # type: ignore[attr-defined]

    harness = SinkHarness(WindowSink(), dec, strategy=CommitStrategy.COMMIT_AFTER_FLUSH)
    count = "cdc_end_to_end_latency_seconds_count"
    harness.produce("orders", values(3))
    harness.poll()
    assert harness.metric(count, service="test-service", topic="orders") == 0, "held: not yet"
    harness.produce("orders", values(2, start=3))
    harness.poll()  # the window of 5 closes: both batches are durable now
    assert harness.metric(count, service="test-service", topic="orders") == 2
    total = harness.metric(
        "cdc_end_to_end_latency_seconds_sum", service="test-service", topic="orders"
    )
    assert total >= 2 * 2.0


def test_revoke_flushes_held_records_and_commits_before_release() -> None:
    class RevokingWindow(WindowSink):
        def on_revoke(self, partitions: Sequence[TopicPartition]) -> Offsets | None:
            return self.flush()

    sink = RevokingWindow()
    harness = SinkHarness(sink, decode)
    harness.produce("orders", values(3), partition=1)
    harness.poll()
    assert harness.committed == {}
    harness.consumer.revoke([TP1])
    harness.poll()
    assert harness.committed == {TP1: 3}
    assert sink.written == [0, 1, 2]


def test_a_revoke_mid_retry_drops_the_revoked_records_from_the_batch() -> None:
    sink = ListSink()
    harness = SinkHarness(sink, decode, batch_size=100)
    harness.produce("orders", values(2), partition=0)
    harness.produce("orders", values(2, start=10), partition=1)
    sink.fail_writes = 2
    original = harness.loop._sleep_polling

    def revoke_once(seconds: float) -> None:
        if TP1 in harness.consumer.assignment:
            harness.consumer.revoke([TP1])
        original(seconds)

    harness.loop._sleep_polling = revoke_once  # type: ignore[method-assign]
    harness.poll()
    assert sink.ids == [0, 1]
    assert harness.committed == {TP0: 2}  # nothing for TP1: its next owner reads it again


def test_records_fetched_during_a_pause_are_read_again_after_resume() -> None:
    sink = ListSink()
    harness = SinkHarness(sink, decode, batch_size=2)
    harness.produce("orders", values(2))
    sink.fail_writes = 2
    original = harness.loop._sleep_polling

    def more_while_paused(seconds: float) -> None:
        harness.produce("orders", values(1, start=len(harness.consumer.log[TP0])))
        harness.consumer.resume([TP0])  # a client that still delivers while paused
        original(seconds)

    harness.loop._sleep_polling = more_while_paused  # type: ignore[method-assign]
    harness.poll()
    harness.loop._sleep_polling = original  # type: ignore[method-assign]
    harness.run_until_idle()
    assert sink.ids == [0, 1, 2, 3]


class _IdleWindowSink(BaseSink[bytes]):
    """Holds records until a tick says the window went quiet (like the analytics flusher)."""

    def __init__(self) -> None:
        self.held: dict[TopicPartition, int] = {}
        self.written: list[bytes] = []
        self._pending: list[bytes] = []
        self.ticks = 0

    def write_batch(self, batch: Batch[bytes]) -> dict[TopicPartition, int]:
        self._pending.extend(batch)
        self.held.update(batch.next_offsets)
        return {}  # nothing durable yet

    def tick(self) -> dict[TopicPartition, int] | None:
        self.ticks += 1
        if not self._pending:
            return None
        self.written.extend(self._pending)
        self._pending.clear()
        return dict(self.held)


def test_tick_lets_a_windowed_sink_commit_an_idle_window() -> None:
    sink = _IdleWindowSink()
    harness = SinkHarness(sink, lambda m: m.value(), strategy=CommitStrategy.COMMIT_AFTER_FLUSH)
    harness.produce("t", [b"a", b"b", b"c"])
    harness.run_until_idle()
    assert harness.committed == {}, "nothing durable, nothing committed"
    harness.tick()
    assert sink.written == [b"a", b"b", b"c"]
    assert harness.committed == {TopicPartition("t", 0): 3}
    harness.tick()  # nothing new: no error, no change
    assert harness.committed == {TopicPartition("t", 0): 3}
    assert sink.ticks == 2


class _StoringSink(BaseSink[bytes]):
    def __init__(self) -> None:
        self.ids: list[bytes] = []

    def write_batch(self, batch: Batch[bytes]) -> dict[TopicPartition, int]:
        self.ids.extend(batch)
        return dict(batch.next_offsets)


def test_a_rate_limited_commit_goes_out_on_the_next_tick_when_the_stream_is_quiet() -> None:
    """Otherwise the last batch before a quiet spell shows as lag until the next record."""
    harness = SinkHarness(
        _StoringSink(),
        lambda m: m.value(),
        strategy=CommitStrategy.SINK_MANAGED,
        commit_interval_s=0.3,
    )
    tp = TopicPartition("t", 0)
    harness.produce("t", [b"a"])
    harness.run_until_idle()
    assert harness.committed == {tp: 1}
    harness.produce("t", [b"b", b"c"])
    harness.run_until_idle()
    assert harness.committed == {tp: 1}, "within the interval: deferred"
    harness.tick()
    assert harness.committed == {tp: 1}, "still within the interval"
    time.sleep(0.35)
    harness.tick()
    assert harness.committed == {tp: 3}


# -- no record stops a partition; a rebalance during a retry pause loses nothing --------------


def test_a_partition_assigned_during_a_retry_pause_loses_nothing() -> None:
    # The member backs off while partition 1 is assigned to it (a peer left the group). The
    # records it fetches from partition 1 during the pause must be read again after the resume,
    # not skipped: the commit would otherwise jump the gap.
    sink = ListSink()
    harness = SinkHarness(sink, decode, batch_size=100)
    harness.produce("orders", values(3), partition=0)
    harness.consumer.revoke([TP1])  # held back until a peer "leaves"
    sink.fail_writes = 2
    original = harness.loop._sleep_polling

    def peer_leaves(seconds: float) -> None:
        if TP1 not in harness.consumer.assignment:
            harness.produce("orders", values(4, start=10), partition=1)
            harness.consumer.assign([TP1])
        original(seconds)

    harness.loop._sleep_polling = peer_leaves  # type: ignore[method-assign]
    harness.run_until_idle()
    harness.shutdown()
    assert sorted(sink.ids) == [0, 1, 2, 10, 11, 12, 13]  # type: ignore[type-var]
    assert harness.committed == {TP0: 3, TP1: 4}


def test_a_partition_assigned_during_a_retry_pause_is_paused_until_the_resume() -> None:
    sink = ListSink()
    harness = SinkHarness(sink, decode, batch_size=100)
    harness.produce("orders", values(1), partition=0)
    harness.consumer.revoke([TP1])
    sink.fail_writes = 3
    original = harness.loop._sleep_polling
    paused_during: list[set[TopicPartition]] = []

    def peer_leaves(seconds: float) -> None:
        if TP1 not in harness.consumer.assignment:
            harness.produce("orders", values(2, start=10), partition=1)
            harness.consumer.assign([TP1])
        else:
            paused_during.append(harness.consumer.paused)
        original(seconds)

    harness.loop._sleep_polling = peer_leaves  # type: ignore[method-assign]
    harness.poll()
    assert paused_during and all(p == {TP0, TP1} for p in paused_during)
    harness.loop._sleep_polling = original  # type: ignore[method-assign]
    harness.run_until_idle()
    assert sorted(sink.ids) == [0, 10, 11]  # type: ignore[type-var]


def test_any_exception_while_decoding_dead_letters_that_record() -> None:
    def fragile(message: object) -> dict[str, object] | None:
        value = decode(message)
        if value is not None and value["id"] == 1:
            raise OverflowError("date value out of range")
        return value

    sink = ListSink()
    harness = SinkHarness(sink, fragile)
    harness.produce("orders", values(3))
    harness.run_until_idle()
    assert sink.ids == [0, 2]
    [dead] = harness.dead_letters
    assert (dead.offset, dead.code) == (1, "decode_failed")
    assert dead.exception_class == "builtins.OverflowError"
    assert "date value out of range" in dead.message
    assert harness.committed == {TP0: 3}


class RefusingSink(ListSink):
    """A store that refuses, for good, any batch holding a record whose id is in ``refused``."""

    def __init__(self, refused: set[object]) -> None:
        super().__init__()
        self.refused = refused
        self.attempts = 0

    def write_batch(self, batch: Batch[dict[str, object]]) -> Offsets | None:
        self.attempts += 1
        bad = [r["id"] for r in batch if r["id"] in self.refused]
        if bad:
            raise RejectedError(f"value out of range for column amount: {bad[0]}")
        return super().write_batch(batch)


def test_a_record_the_store_refuses_is_isolated_dead_lettered_and_the_rest_written() -> None:
    sink = RefusingSink({5, 17})
    harness = SinkHarness(sink, decode, batch_size=100, strategy=CommitStrategy.SINK_MANAGED)
    harness.produce("orders", values(20), partition=0)
    harness.produce("orders", values(5, start=100), partition=1)
    harness.produce("orders", [b"not json"], partition=1)
    harness.run_until_idle()
    harness.shutdown()
    assert sorted(sink.ids) == sorted(
        [i for i in range(20) if i not in (5, 17)] + [*range(100, 105)]
    )  # type: ignore[type-var]
    by_offset = {(d.partition, d.offset): d for d in harness.dead_letters}
    assert set(by_offset) == {(0, 5), (0, 17), (1, 5)}
    assert by_offset[(0, 5)].code == "store_rejected"
    assert "value out of range for column amount: 5" in by_offset[(0, 5)].message
    assert by_offset[(0, 5)].value == orjson.dumps({"id": 5})
    assert by_offset[(1, 5)].code == "not_json"
    # The store's own offsets reach the end of both partitions, and so does the commit.
    assert sink.stored == {TP0: 20, TP1: 6}
    assert harness.committed == {TP0: 20, TP1: 6}
    # Dead letters reach the sink too (a sink may keep them in its own DLQ table).
    stored_dead = {(d.partition, d.offset) for b in sink.batches for d in b.dead_letters}
    assert stored_dead == {(0, 5), (0, 17), (1, 5)}
    # Bisection, not one write per record.
    assert sink.attempts < 25


def test_a_refusal_reported_for_an_earlier_batch_isolates_that_batch() -> None:
    # A sink that writes in the background learns of a refusal one call late: it raises the
    # refusal with the batch it belongs to, and the runtime isolates that batch, then writes
    # the current one.
    class Background(ListSink):
        def __init__(self) -> None:
            super().__init__()
            self.held: Batch[dict[str, object]] | None = None

        def write_batch(self, batch: Batch[dict[str, object]]) -> Offsets | None:
            self._settle()
            self.held = batch
            return {}

        def flush(self) -> Offsets | None:
            self._settle()
            return None

        def _settle(self) -> None:
            held, self.held = self.held, None
            if held is None:
                return
            if any(r["id"] == 3 for r in held):
                raise RejectedError("refused", batch=held)
            ListSink.write_batch(self, held)

    sink = Background()
    harness = SinkHarness(sink, decode, batch_size=5)
    harness.produce("orders", values(12))
    harness.run_until_idle()
    harness.shutdown()
    assert sink.ids == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]
    assert [(d.offset, d.code) for d in harness.dead_letters] == [(3, "store_rejected")]
    assert harness.committed == {TP0: 12}


def test_batches_are_bounded_in_bytes_as_well_as_in_count() -> None:
    sink = ListSink()
    harness = SinkHarness(sink, decode, batch_size=100, batch_max_bytes=2500)
    padded = [orjson.dumps({"id": i, "pad": "x" * 980}) for i in range(7)]  # ~1 KB each
    harness.produce("orders", [*padded[:6], orjson.dumps({"id": 6, "pad": "y" * 5000})])
    harness.run_until_idle()
    harness.shutdown()
    assert sink.ids == list(range(7))
    sizes = [sum(len(m.value() or b"") for m in b.sources[TP0]) for b in sink.batches]
    assert [len(b) for b in sink.batches] == [2, 2, 2, 1]  # a record past the bound goes alone
    assert all(size <= 2500 for size in sizes[:3])
    assert harness.committed == {TP0: 7}


def test_a_decoder_failing_on_every_record_stops_the_service_not_empties_the_stream() -> None:
    # One odd record is dead-lettered; a decoder that raises on everything is a bug (a bad
    # deploy), and dead-lettering the whole stream would hide it: the loop fails loudly.
    def broken(message: object) -> dict[str, object] | None:
        raise TypeError("missing 1 required positional argument")

    sink = ListSink()
    harness = SinkHarness(sink, broken, decode_failure_limit=50)
    harness.produce("orders", values(49))
    harness.run_until_idle()  # under the limit: dead-lettered
    assert len(harness.dead_letters) == 49
    harness.produce("orders", values(10, start=49))
    with pytest.raises(DecoderBrokenError, match="50 records in a row"):
        harness.poll()
    assert len(harness.dead_letters) == 49  # nothing of the failing batch went out
    assert harness.committed == {TP0: 49}


def test_typed_parse_errors_and_a_good_record_reset_the_decoder_breaker() -> None:
    def sometimes(message: object) -> dict[str, object] | None:
        value = decode(message)
        if value is not None and value["id"] % 10:
            raise OverflowError("odd value")
        return value

    sink = ListSink()
    harness = SinkHarness(sink, sometimes, decode_failure_limit=20)
    harness.produce("orders", values(100))
    harness.produce("orders", [b"not json"] * 30)  # typed: never counted as a decoder bug
    harness.run_until_idle()
    assert sink.ids == list(range(0, 100, 10))
    assert len(harness.dead_letters) == 90 + 30


def test_partitions_assigned_while_the_sink_is_down_wait_for_it_instead_of_exiting() -> None:
    # A rebalance while the store is down: the sink cannot say where the partitions resume.
    # The member keeps them, reads nothing from them until it can, then resumes exactly there.
    class DownAtFirst(ListSink):
        def __init__(self) -> None:
            super().__init__()
            self.down = 8  # longer than any quick retry inside the callback

        def stored_offsets(self, partitions: Sequence[TopicPartition]) -> Offsets:
            if self.down:
                self.down -= 1
                raise RetryableError("database unavailable")
            return super().stored_offsets(partitions)

    sink = DownAtFirst()
    sink.stored = {TP0: 2}  # what an earlier owner stored
    harness = SinkHarness(sink, decode, strategy=CommitStrategy.SINK_MANAGED)
    harness.produce("orders", values(5))
    for _ in range(30):
        harness.poll()
        time.sleep(0.01)
    harness.produce("orders", values(2, start=5))
    harness.run_until_idle()
    harness.shutdown()
    assert sink.ids == [2, 3, 4, 5, 6]
    assert harness.committed == {TP0: 7}


def test_a_refused_record_is_dead_lettered_before_any_write_stores_offsets_past_it() -> None:
    # A crash between a later part's write and the dead letter would lose the refused record:
    # the stored offsets already pass it, and nobody reads it again.
    events: list[tuple[str, int]] = []

    class Logged(RefusingSink):
        def write_batch(self, batch: Batch[dict[str, object]]) -> Offsets | None:
            out = super().write_batch(batch)
            events.append(("stored", batch.next_offsets.get(TP0, -1)))
            return out

    sink = Logged({5})
    harness = SinkHarness(sink, decode, batch_size=100, strategy=CommitStrategy.SINK_MANAGED)
    original_send = harness.dlq.send

    def send(topic: str, dead_letters: list[DeadLetter], service: str) -> None:
        events.extend(("dead-lettered", d.offset) for d in dead_letters)
        original_send(topic, dead_letters, service)

    harness.dlq.send = send  # type: ignore[method-assign]
    harness.produce("orders", values(12))
    harness.run_until_idle()
    dead_at = events.index(("dead-lettered", 5))
    assert all(offset <= 5 for kind, offset in events[:dead_at] if kind == "stored")
    # The sink gets the dead letter with the first write that passes it (a DLQ table).
    passing = next(b for b in sink.batches if b.next_offsets.get(TP0, 0) > 5)
    assert [d.offset for d in passing.dead_letters] == [5]


@pytest.mark.parametrize("leave", ["revoke", "lose"])
def test_a_partition_that_leaves_while_a_refused_batch_is_isolated_loses_nothing(
    leave: str,
) -> None:
    # Seen in a chaos run: the store refused a record, and while the runtime split the batch
    # (its part writes waiting out an outage) the partition of the refused record was lost
    # after a session timeout. The isolation then failed with a KeyError and the service
    # exited. What leaves is its next owner's to read (and to dead-letter again); the rest is
    # written and committed.
    class OutageAfterRefusal(RefusingSink):
        def write_batch(self, batch: Batch[dict[str, object]]) -> Offsets | None:
            try:
                return super().write_batch(batch)
            except RejectedError:
                if len(batch) == 1:
                    self.fail_writes = 1  # the refusal is isolated; the next part meets an outage
                raise

    sink = OutageAfterRefusal({15})
    harness = SinkHarness(sink, decode, batch_size=100, strategy=CommitStrategy.SINK_MANAGED)
    harness.produce("orders", values(10), partition=0)
    harness.produce("orders", values(10, start=10), partition=1)
    original = harness.loop._sleep_polling

    def partition_leaves(seconds: float) -> None:
        if TP1 in harness.consumer.assignment:
            getattr(harness.consumer, leave)([TP1])
        original(seconds)

    harness.loop._sleep_polling = partition_leaves  # type: ignore[method-assign]
    harness.poll()
    assert sorted(i for i in sink.ids if isinstance(i, int) and i < 10) == list(range(10))
    assert harness.committed.get(TP0) == 10
    assert TP1 not in harness.committed  # not past anything: its next owner reads it all
    assert all(stored <= 10 for tp, stored in sink.stored.items() if tp == TP1)


def test_a_partition_s_lag_is_reported_on_the_poll_that_assigns_it() -> None:
    """Lag is read every few seconds; a partition that has just joined is read at once, so a
    dashboard never shows a member's new backlog as no lag at all."""
    harness = SinkHarness(ListSink(), decode)
    harness.produce("orders", values(3), partition=0)
    harness.poll()  # assigns orders[0] and reads its lag; the next reading is seconds away
    assert (
        harness.metric("cdc_consumer_lag", service="test-service", topic="orders", partition="0")
        == 3.0
    )

    harness.produce("orders", values(5, start=3), partition=1)
    harness.poll()  # assigns orders[1] (and reads orders[0]'s records)
    labels = {"service": "test-service", "topic": "orders", "partition": "1"}
    assert harness.metrics.registry.get_sample_value("cdc_consumer_lag", labels) == 5.0
