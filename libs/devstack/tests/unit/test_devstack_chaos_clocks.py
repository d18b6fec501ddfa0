"""The ``clock_skew`` fault's pieces and the clock check: lying clocks, copies with a lying
source clock, and a verdict that fails when an as-of or the lake's lateness froze."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from cdc_events import parse_record, source_version
from cdc_events.testing import golden
from devstack._chaos_clocks import (
    LATE_SLACK_S,
    LateWindow,
    SkewObservation,
    judge,
    latest_on_time,
    libpq_dsn,
)
from devstack._chaos_skew import (
    EPOCH,
    FUTURE,
    YEAR_ONE,
    RotatingLies,
    lying_times,
    skewed_copy,
    source_times_ms,
)
from devstack.simulator import STAMPED, USER_EVENTS_TOPIC, ShopSimulator
from devstack.truth import SENT_AT

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BUDGET = 45.0


def _obs(**kw: Any) -> SkewObservation:
    healthy: dict[str, Any] = {
        "started": T0,
        "as_of_ahead": True,
        "as_of_peak_ahead_s": 19.6,
        "as_of_back_after_s": 21.0,
    }
    return SkewObservation(**(healthy | kw))


def _judge(obs: SkewObservation | None = None, **kw: Any) -> Any:
    healthy: dict[str, Any] = {
        "budget_s": BUDGET,
        "stats": True,
        "as_of": T0 + timedelta(minutes=2),
        "latest_on_time": T0 + timedelta(minutes=2),
        "users_ahead": 12,
        "late": [
            # the far-past copies: late themselves, as they should be
            LateWindow(datetime(1970, 1, 1, tzinfo=UTC), 6, 1.8e9),
            LateWindow(datetime(1, 1, 1, tzinfo=UTC), 6, 6.3e10),
            # a record in flight at a window's end
            LateWindow(T0 + timedelta(seconds=60), 1, 0.8),
        ],
    }
    return judge(obs or _obs(), **(healthy | kw))


def test_a_clamped_skew_passes_and_says_what_it_saw() -> None:
    check = _judge()
    assert check.ok, check.problems
    assert check.as_of_final_vs_events_s == 0
    assert check.lake_late_on_time == 1  # the far-past windows are not on time
    assert check.lake_max_lateness_s == pytest.approx(0.8)
    assert check.users_ahead_of_as_of == 12  # informational: their own far-future events
    assert check.summary() == "as-of +20s, moved on after 21s; lake 1 on-time late"
    assert orjson.loads(orjson.dumps(check.to_dict()))["observation"]["started"].startswith("2026")


def test_an_as_of_that_never_comes_back_fails() -> None:
    # MAX_CLOCK_SKEW_SECONDS huge (86400): the as-of stays a day ahead, on-time events never
    # move it on, and at the end it is still ahead of every on-time event.
    check = _judge(
        _obs(as_of_peak_ahead_s=86_390.0, as_of_back_after_s=None),
        as_of=T0 + timedelta(days=1),
    )
    assert not check.ok
    text = " ".join(check.problems)
    assert "86390s ahead of the clock" in text
    assert "froze" in text
    assert "ends 86280.0s ahead of the latest on-time user event" in text


def test_an_unbounded_as_of_at_2099_fails() -> None:
    check = _judge(
        _obs(as_of_peak_ahead_s=2.3e9, as_of_back_after_s=None),
        as_of=FUTURE,
    )
    assert not check.ok
    assert len(check.problems) == 3


def test_an_as_of_behind_the_on_time_events_fails() -> None:
    check = _judge(as_of=T0 + timedelta(minutes=1))
    assert not check.ok
    assert "60.0s behind" in check.problems[0]


def test_far_future_events_that_never_reach_the_as_of_fail() -> None:
    check = _judge(_obs(as_of_ahead=False, as_of_peak_ahead_s=None, as_of_back_after_s=None))
    assert not check.ok
    assert "never showed" in check.problems[0]


def test_without_the_statistics_only_the_lake_is_judged() -> None:
    check = _judge(
        _obs(as_of_ahead=False, as_of_peak_ahead_s=None, as_of_back_after_s=None),
        stats=False,
        as_of=None,
        latest_on_time=None,
    )
    assert check.ok, check.problems


def test_on_time_records_late_by_more_than_the_slack_fail() -> None:
    # A lake whose watermark ran ahead of the data (skew 60 s over a 10 s grace): the on-time
    # records of the next 50 s are late by up to 50 s.
    late = [
        LateWindow(T0 + timedelta(seconds=60), 40, 48.2),
        LateWindow(T0 + timedelta(seconds=120), 3, LATE_SLACK_S),  # at the slack: in flight
    ]
    check = _judge(late=late)
    assert not check.ok
    assert check.lake_late_on_time == 43
    assert "counted 40 on-time records late by up to 48s" in check.problems[0]


def test_a_lake_not_read_is_a_note_and_a_read_error_a_failure() -> None:
    obs = _obs()
    assert _judge(obs, late=None).ok
    assert obs.notes == ["the lake's late report was not read"]
    check = _judge(errors=["the lake's late report not readable: boom"])
    assert not check.ok


def test_latest_on_time_skips_what_a_lying_clock_stamped() -> None:
    events = [
        {"timestamp": "2026-03-01T12:00:00.000+00:00"},
        {"timestamp": "2026-03-01T12:00:05.000+00:00"},
        {"timestamp": "2099-06-15T12:00:00.000+00:00", SENT_AT: "2026-03-01T12:00:03.000+00:00"},
    ]
    assert latest_on_time(events) == datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    assert latest_on_time([]) is None


def test_rotating_lies_stamp_every_fourth_of_each_kind_in_turn() -> None:
    lies = RotatingLies(lying_times(T0))
    events = [lies(USER_EVENTS_TOPIC) for _ in range(16)]
    assert [e for e in events if e is not None] == [
        FUTURE,
        EPOCH,
        T0 + timedelta(days=400),
        YEAR_ONE,
    ]
    assert events[:3] == [None, None, None]
    orders = [lies("orders.created_at") for _ in range(8)]
    assert [o for o in orders if o is not None] == [FUTURE, EPOCH]
    assert lies("something else") is None
    assert lies.stamped == {USER_EVENTS_TOPIC: 4, "orders.created_at": 2}
    assert set(lying_times(T0)) == set(STAMPED)


def test_lying_times_are_ones_the_parser_accepts() -> None:
    from cdc_events import parse_user_activity

    for ts in lying_times(T0)[USER_EVENTS_TOPIC]:
        event = {
            "event_id": "e",
            "user_id": "u",
            "event_type": "click",
            "timestamp": ts.isoformat(timespec="milliseconds"),
        }
        assert parse_user_activity(orjson.dumps(event)).timestamp == ts


@pytest.mark.parametrize("name", ["pg-schema-orders-c", "pg-schema-orders-u"])
def test_a_copy_with_a_lying_source_clock_is_the_same_change(name: str) -> None:
    record = golden(name)
    original = parse_record(record.topic, 0, 5, record.key, record.value, record.headers)
    for ts_ms in source_times_ms(T0):
        copy = skewed_copy(record.value, ts_ms)
        assert copy is not None
        parsed = parse_record(record.topic, 0, 9, record.key, copy, record.headers)
        assert parsed.source.ts_ms == ts_ms  # type: ignore[union-attr]
        # Same position: the same id and version, so every consumer takes it as the change.
        assert parsed.event_id == original.event_id  # type: ignore[union-attr]
        assert source_version(parsed) == source_version(original)  # type: ignore[arg-type]
        source = orjson.loads(copy)["payload"]["source"]
        if ts_ms > 0:
            assert (source["ts_us"], source["ts_ns"]) == (ts_ms * 1000, ts_ms * 1_000_000)
        elif ts_ms < -(2**63) // 1000:  # year 1: not in 64 bits of microseconds
            assert (source["ts_us"], source["ts_ns"]) == (None, None)


def test_only_changes_with_a_row_are_copied() -> None:
    assert skewed_copy(golden("pg-schema-orders-d").value or b"", 0) is None
    assert skewed_copy(b"not json", 0) is None
    assert skewed_copy(b"[]", 0) is None


def test_libpq_dsn_from_the_devstack_url() -> None:
    url = "postgresql+psycopg2://postgres@127.0.0.1:5433/stats"
    assert libpq_dsn(url) == "postgresql://postgres@127.0.0.1:5433/stats"


class _Producer:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    def produce(self, _topic: str, *, key: bytes, value: bytes, on_delivery: Any) -> None:
        self.values.append(value)
        on_delivery(None, None)

    def poll(self, _timeout: float) -> int:
        return 0


def test_the_simulator_sends_lying_times_and_logs_when_it_really_sent_them(
    tmp_path: Path,
) -> None:
    log = tmp_path / "user-events.jsonl"
    sim = ShopSimulator("postgresql://unused", None, seed=3, activity_log=log)
    producer = _Producer()
    sim._producer = producer  # type: ignore[assignment]
    sim.lying_clock = RotatingLies(lying_times(T0))
    before = datetime.now(UTC)
    sim.emit_activity(8)
    sent = [orjson.loads(v) for v in producer.values]
    logged = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert [e["timestamp"][:4] for e in sent if e["timestamp"] < "2000"] == ["1970"]
    assert sent[3]["timestamp"] == "2099-06-15T12:00:00.000+00:00"
    assert all(SENT_AT not in e for e in sent)  # the broker gets the event as the front end sent it
    stamped = [e for e in logged if SENT_AT in e]
    assert [e["event_id"] for e in stamped] == [sent[3]["event_id"], sent[7]["event_id"]]
    assert all(datetime.fromisoformat(e[SENT_AT]) >= before - timedelta(seconds=1) for e in stamped)
    assert [{k: v for k, v in e.items() if k != SENT_AT} for e in logged] == sent
    assert sim.ledger.activity_events == 8
