"""The chaos schedule: seeded, complete, one fault at a time, within its duration."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from devstack import Check, FlowCheck
from devstack._services import SERVICES as DEVSTACK_SERVICES
from devstack.chaos import (
    FAULT_KINDS,
    OVERLAP_KINDS,
    ChaosOptions,
    busy_time,
    flow_check_ok,
    flow_ok,
    plan_faults,
    topic_events,
)

SERVICES = ["analytics-flusher", "event-store-writer", "search-indexer", "stats-aggregator"]


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    options = ChaosOptions()
    a = plan_faults(random.Random(42), SERVICES, options)
    b = plan_faults(random.Random(42), SERVICES, options)
    c = plan_faults(random.Random(43), SERVICES, options)
    assert a == b
    assert a != c


@pytest.mark.parametrize("seed", range(50))
def test_every_kind_once_kills_as_asked_and_no_overlap(seed: int) -> None:
    options = ChaosOptions(duration_s=180, service_kills=3, overlap=False)
    plan = plan_faults(random.Random(seed), SERVICES, options)
    kinds = Counter(f.kind for f in plan)
    assert set(kinds) == set(FAULT_KINDS)
    assert kinds["service_kill"] == 3
    assert all(kinds[k] == 1 for k in FAULT_KINDS if k != "service_kill")
    assert all(f.target in SERVICES for f in plan if f.kind == "service_kill")
    # One at a time, with at least the minimum gap between the planned end and the next start.
    assert plan[0].at_s >= options.lead_in_s + options.min_gap_s
    for before, after in itertools.pairwise(plan):
        end = before.at_s + busy_time(before.kind, before.duration_s)
        assert after.at_s >= end + options.min_gap_s - 0.02
    last = plan[-1]
    assert last.at_s + busy_time(last.kind, last.duration_s) <= options.duration_s
    # The replica lives across at least one other fault, and is removed from the same service.
    add = next(i for i, f in enumerate(plan) if f.kind == "replica_add")
    remove = next(i for i, f in enumerate(plan) if f.kind == "replica_remove")
    assert remove >= add + 2
    assert plan[add].target == plan[remove].target


def test_outage_lengths_come_from_the_options() -> None:
    options = ChaosOptions(
        broker_pause_s=10, sink_stop_s=15, aws_pause_s=15, kill_down_s=2, zombie_stall_s=14
    )
    plan = {f.kind: f.duration_s for f in plan_faults(random.Random(1), SERVICES, options)}
    assert plan["broker_pause"] == 10
    assert plan["sink_stop"] == 15
    assert plan["aws_pause"] == 15
    assert plan["service_kill"] == 2
    assert plan["outage_rebalance"] == plan["kill_in_retry"] == 15
    assert plan["zombie"] == 14


@pytest.mark.parametrize("seed", range(20))
def test_with_overlap_every_overlapping_fault_once_within_the_default_duration(seed: int) -> None:
    options = ChaosOptions()
    plan = plan_faults(random.Random(seed), SERVICES, options)
    kinds = Counter(f.kind for f in plan)
    assert set(kinds) == set(FAULT_KINDS) | set(OVERLAP_KINDS)
    assert all(kinds[k] == 1 for k in OVERLAP_KINDS)
    assert all(f.target in SERVICES for f in plan if f.kind in ("zombie", "kill_in_retry"))
    # The stall outlasts the session timeout, so the group really replaces the member.
    zombie = next(f for f in plan if f.kind == "zombie")
    assert zombie.duration_s * 1000 > options.session_timeout_ms
    last = plan[-1]
    assert last.at_s + busy_time(last.kind, last.duration_s) <= options.duration_s


def test_a_schedule_that_cannot_fit_is_refused_with_the_time_it_needs() -> None:
    with pytest.raises(ValueError, match=r"need at least \d+s"):
        plan_faults(random.Random(1), SERVICES, ChaosOptions(duration_s=30))


def test_without_replicas_and_with_more_relay_restarts() -> None:
    options = ChaosOptions(replicas=False, relay_restarts=2, service_kills=1, overlap=False)
    kinds = Counter(f.kind for f in plan_faults(random.Random(5), SERVICES, options))
    assert "replica_add" not in kinds
    assert kinds["relay_restart"] == 2


def test_flow_at_least_once_for_cdc_and_exactly_for_user_events() -> None:
    assert flow_check_ok(FlowCheck("dbserver1.public.orders", "c", 10, 12))  # re-emitted
    assert not flow_check_ok(FlowCheck("dbserver1.public.orders", "c", 10, 9))  # lost
    assert not flow_check_ok(FlowCheck("dbserver1.public.orders", "r", 0, 3))  # never committed
    assert not flow_check_ok(FlowCheck("user-events", "event", 10, 11))
    assert flow_check_ok(FlowCheck("user-events", "event", 10, 10))
    assert not flow_ok([])


def test_topic_events_sum_ops_and_count_re_emits() -> None:
    events = topic_events(
        [
            FlowCheck("dbserver1.public.orders", "c", 10, 12),
            FlowCheck("dbserver1.public.orders", "u", 5, 5),
            FlowCheck("user-events", "event", 7, 7),
        ]
    )
    by_topic = {e.topic: e for e in events}
    assert by_topic["dbserver1.public.orders"].committed == 15
    assert by_topic["dbserver1.public.orders"].in_broker == 17
    assert by_topic["dbserver1.public.orders"].re_emitted == 2
    assert by_topic["user-events"].re_emitted == 0


def test_after_a_resnapshot_only_user_events_are_compared_op_by_op() -> None:
    checks = [
        FlowCheck("dbserver1.public.orders", "c", 10, 7),  # coalesced into snapshot reads
        FlowCheck("dbserver1.public.orders", "r", 0, 30),
        FlowCheck("user-events", "event", 5, 5),
    ]
    assert not flow_ok(checks)
    assert flow_ok(checks, resnapshot=True)
    assert not flow_ok([*checks, FlowCheck("user-events", "event", 5, 4)], resnapshot=True)


def test_a_resnapshot_unless_left_out() -> None:
    plan = plan_faults(random.Random(3), SERVICES, ChaosOptions())
    assert [f.kind for f in plan].count("relay_resnapshot") == 1
    plan = plan_faults(random.Random(3), SERVICES, ChaosOptions(resnapshot=False))
    assert "relay_resnapshot" not in [f.kind for f in plan]
    plan = plan_faults(random.Random(3), SERVICES, ChaosOptions(overlap=False))
    assert "relay_resnapshot" not in [f.kind for f in plan]


@pytest.mark.parametrize("seed", range(20))
def test_clock_skew_is_planned_once_with_overlap_for_its_window(seed: int) -> None:
    options = ChaosOptions()
    plan = plan_faults(random.Random(seed), SERVICES, options)
    skews = [f for f in plan if f.kind == "clock_skew"]
    assert len(skews) == 1
    assert skews[0].target == "clocks"
    assert skews[0].duration_s == options.skew_window_s
    # Its planned time covers the window, the copies and the as-of coming back to the clock.
    assert busy_time("clock_skew", options.skew_window_s) >= options.skew_window_s + 20
    no_overlap = plan_faults(random.Random(seed), SERVICES, replace(options, overlap=False))
    assert "clock_skew" not in {f.kind for f in no_overlap}


def test_the_e2e_schedule_still_holds_every_fault() -> None:
    # tests/e2e/test_chaos.py: --duration 270 --kills 2
    options = ChaosOptions(duration_s=270, service_kills=2)
    kinds = {f.kind for f in plan_faults(random.Random(11), SERVICES, options)}
    assert kinds == set(FAULT_KINDS) | set(OVERLAP_KINDS)


def test_the_heal_budget_fits_the_devstack_skew_bounds() -> None:
    # The as-of may stay up to the aggregator's MAX_CLOCK_SKEW_SECONDS ahead: the budget must
    # leave room for processing, and the lake's skew must not exceed its grace.
    env = {s.name: s.env for s in DEVSTACK_SERVICES}
    stats_skew = int(env["stats-aggregator"]["MAX_CLOCK_SKEW_SECONDS"])
    assert stats_skew + 15 <= ChaosOptions().clock_heal_s
    lake = env["analytics-flusher"]
    assert int(lake["MAX_CLOCK_SKEW_SECONDS"]) <= int(lake["GRACE_SECONDS"])


def test_a_frozen_clock_fails_the_run() -> None:
    from devstack._chaos_clocks import ClockCheck, SkewObservation
    from devstack.chaos import ChaosResult
    from devstack.verify import VerifyReport

    result = ChaosResult(
        seed=1,
        options=ChaosOptions(),
        planned=[],
        faults=[],
        unexpected_exits=[],
        events=[],
        flow=[FlowCheck("user-events", "event", 3, 3)],
        report=VerifyReport([], 1.0, 1),
        simulated_s=1.0,
        transactions=0,
        activity_events=3,
    )
    assert result.report is not None
    result.report.checks.append(Check("s", "c", True, 1, 1))
    assert result.ok
    obs = SkewObservation(started=datetime(2026, 1, 1, tzinfo=UTC))
    result.clocks = ClockCheck(ok=False, observation=obs, problems=["froze"])
    assert not result.ok
    assert result.to_dict()["clocks"]["problems"] == ["froze"]
