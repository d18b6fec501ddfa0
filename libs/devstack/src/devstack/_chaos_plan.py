"""The chaos run's plan and record (pure): options, the seeded fault schedule, what was
injected, and the at-least-once flow verdict. ``chaos`` drives a pipeline with them; the CLI
renders them; unit tests check the schedule without starting anything.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from devstack._chaos_clocks import ClockCheck
from devstack._pipeline import CDC_TOPICS, DRAIN_TIMEOUT_S, FlowCheck
from devstack.simulator import USER_EVENTS_TOPIC
from devstack.verify import VerifyReport

FAULT_KINDS: Final = (
    "service_kill",
    "relay_restart",
    "broker_pause",
    "sink_stop",
    "aws_pause",
    "replica_add",
    "replica_remove",
)
#: Faults that overlap by construction (``ChaosOptions.overlap``; see ``_chaos_overlap``).
OVERLAP_KINDS: Final = (
    "outage_rebalance",
    "kill_in_retry",
    "zombie",
    "aws_throttle",
    "clock_skew",
    "relay_resnapshot",
)
#: Left out with ``ChaosOptions(resnapshot=False)`` (``--no-resnapshot``).
RESNAPSHOT_KIND: Final = "relay_resnapshot"

# Planning estimates of how long the faults without a fixed duration take here (a relay start
# is a JVM start plus the connector's; a SIGTERMed replica flushes, commits and leaves its group).
_ESTIMATE_S: Final[dict[str, float]] = {
    "service_kill": 0.5,
    "relay_restart": 12.0,
    "broker_pause": 0.0,
    "sink_stop": 2.0,
    "aws_pause": 0.0,
    "replica_add": 0.5,
    "replica_remove": 8.0,
    # A replica joins (a rebalance) during the outage and leaves after it.
    "outage_rebalance": 12.0,
    # Killed mid-retry, started again while the outage lasts.
    "kill_in_retry": 2.0,
    # A replica joins and takes partitions, the original stalls, wakes, the replica leaves.
    "zombie": 20.0,
    "aws_throttle": 0.5,
    # Copies read and produced twice, then the as-of back on the clock (the aggregator's skew,
    # 20 s in the devstack, and a batch).
    "clock_skew": 25.0,
    # A JVM start and a snapshot of the whole source again.
    "relay_resnapshot": 25.0,
}


@dataclass(frozen=True)
class ChaosOptions:
    """Size and shape of a chaos run. ``duration_s`` is the length of the fault schedule; the
    simulator also runs before it, while the services join their groups."""

    # Room for every fault with ``overlap`` (about 230 s of faults and gaps at the defaults).
    duration_s: float = 300.0
    rate: float = 200.0
    seed: int | None = None
    service_kills: int = 3
    kill_down_s: float = 3.0
    relay_down_s: float = 2.0
    broker_pause_s: float = 10.0
    sink_stop_s: float = 15.0
    aws_pause_s: float = 15.0
    relay_restarts: int = 1
    replicas: bool = True
    # Faults that overlap: a rebalance while a sink is down, a kill mid-retry, a zombie, AWS
    # throttling answers, a relay that re-runs its snapshot; and, all along, records a store
    # refuses (``refused_every_s``).
    overlap: bool = True
    # With ``overlap``: a relay that lost its offsets runs the snapshot again while changes
    # go on (rows changed, deleted and inserted while it is down reach Kafka only as the new
    # snapshot's reads, or not at all): the read models must follow the new snapshot's
    # generation and sweep the rows it did not read (cdc_events.sweep_version).
    resnapshot: bool = True
    # A stall longer than the services' session timeout (chaos runs them with
    # ``session_timeout_ms``), so the group replaces the stalled member.
    session_timeout_ms: int = 10_000
    zombie_stall_s: float = 14.0
    throttle_s: float = 12.0
    # ``clock_skew``: how long records stamped far ahead and far behind flow, and how long after
    # that the statistics' as-of may take to come back to the clock (the devstack aggregator's
    # MAX_CLOCK_SKEW_SECONDS, 20 s, plus processing): longer, and it froze.
    skew_window_s: float = 6.0
    clock_heal_s: float = 45.0
    refused_every_s: float = 5.0
    lead_in_s: float = 3.0
    min_gap_s: float = 2.0
    # The schedule starts once every service holds partitions, or after this long.
    wait_assigned_s: float = 90.0
    drain_timeout_s: float = DRAIN_TIMEOUT_S
    verify_timeout_s: float = 240.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PlannedFault:
    at_s: float  # offset from the start of the schedule
    kind: str
    target: str
    duration_s: float  # planned outage length; 0 for an instantaneous fault


@dataclass
class FaultRecord:
    """One injected fault, as it happened."""

    seq: int
    kind: str
    target: str
    planned_at_s: float
    at_s: float = 0.0  # offset from the start of the schedule
    wall_time: str = ""  # ISO-8601 UTC
    duration_s: float = 0.0  # from injection until undone (or the action's own time)
    detail: str = ""
    error: str | None = None
    done: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TopicEvents:
    topic: str
    committed: int  # what the source committed (or the simulator sent) for this topic
    in_broker: int
    # Records beyond the committed ones: Debezium re-emits after a relay restart.
    re_emitted: int


@dataclass
class ChaosResult:
    seed: int
    options: ChaosOptions
    planned: list[PlannedFault]
    faults: list[FaultRecord]
    unexpected_exits: list[FaultRecord]
    events: list[TopicEvents]
    flow: list[FlowCheck]
    report: VerifyReport | None
    simulated_s: float
    transactions: int
    activity_events: int
    problems: list[str] = field(default_factory=list)
    #: Records every store refuses, injected all along (``overlap``), as (topic, partition,
    #: offset); and those missing from a consumer's DLQ with ``store_rejected``.
    refused: list[tuple[str, int, int]] = field(default_factory=list)
    refused_missing: list[str] = field(default_factory=list)
    #: Records in each service's dead-letter topic at the end (at least once each).
    dead_lettered: dict[str, int] = field(default_factory=dict)
    #: The highest consumer lag each service reported during the run.
    max_lag: dict[str, float] = field(default_factory=dict)
    #: After ``clock_skew``: did the statistics' as-of or the lake's lateness freeze?
    clocks: ClockCheck | None = None

    @property
    def resnapshot(self) -> bool:
        return any(f.kind == "relay_resnapshot" and f.done for f in self.faults)

    @property
    def flow_ok(self) -> bool:
        return flow_ok(self.flow, resnapshot=self.resnapshot)

    @property
    def faults_ok(self) -> bool:
        return all(f.done and f.error is None for f in self.faults) and len(self.faults) == len(
            self.planned
        )

    @property
    def verified(self) -> bool:
        return self.report is not None and self.report.ok

    @property
    def ok(self) -> bool:
        return (
            self.verified
            and self.flow_ok
            and self.faults_ok
            and not self.unexpected_exits
            and not self.refused_missing
            and (self.clocks is None or self.clocks.ok)
        )

    @property
    def time_to_converge_s(self) -> float | None:
        return None if self.report is None else self.report.elapsed_s

    def kinds_injected(self) -> Counter[str]:
        return Counter(f.kind for f in self.faults if f.done and f.error is None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seed": self.seed,
            "options": self.options.to_dict(),
            "faults": [f.to_dict() for f in self.faults],
            "unexpected_exits": [f.to_dict() for f in self.unexpected_exits],
            "kinds_injected": dict(self.kinds_injected()),
            "events": [asdict(e) for e in self.events],
            "flow_ok": self.flow_ok,
            "resnapshot": self.resnapshot,
            "flow": [asdict(c) | {"ok": flow_check_ok(c)} for c in self.flow],
            "simulated_s": round(self.simulated_s, 1),
            "transactions": self.transactions,
            "activity_events": self.activity_events,
            "time_to_converge_s": (
                None if self.time_to_converge_s is None else round(self.time_to_converge_s, 1)
            ),
            "verification": None if self.report is None else self.report.to_dict(),
            "problems": self.problems,
            "refused": len(self.refused),
            "refused_missing": self.refused_missing,
            "dead_lettered": self.dead_lettered,
            "max_lag": self.max_lag,
            "clocks": None if self.clocks is None else self.clocks.to_dict(),
        }


# -- planning (pure) ----------------------------------------------------------------------------


def _fault_list(
    rng: random.Random, services: Sequence[str], options: ChaosOptions
) -> list[tuple[str, str, float]]:
    others: list[tuple[str, str, float]] = [
        ("service_kill", rng.choice(services), options.kill_down_s)
        for _ in range(options.service_kills)
    ]
    others += [("relay_restart", "relay", options.relay_down_s)] * options.relay_restarts
    others += [
        ("broker_pause", "broker", options.broker_pause_s),
        ("sink_stop", "sink-postgres", options.sink_stop_s),
        ("aws_pause", "aws", options.aws_pause_s),
    ]
    if options.overlap:
        others += [
            ("outage_rebalance", rng.choice(services), options.sink_stop_s),
            ("kill_in_retry", rng.choice(services), options.sink_stop_s),
            ("zombie", rng.choice(services), options.zombie_stall_s),
            ("aws_throttle", "aws", options.throttle_s),
            ("clock_skew", "clocks", options.skew_window_s),
        ]
    if options.overlap and options.resnapshot:
        others.append((RESNAPSHOT_KIND, "relay", options.relay_down_s))
    rng.shuffle(others)
    if not options.replicas:
        return others
    # The replica lives across at least one other fault: its rebalances overlap real trouble.
    target = rng.choice(services)
    add = rng.randrange(0, len(others))
    others.insert(add, ("replica_add", target, 0.0))
    remove = rng.randrange(add + 2, len(others) + 1)
    others.insert(remove, ("replica_remove", target, 0.0))
    return others


def busy_time(kind: str, duration_s: float) -> float:
    """Planned time a fault keeps the driver busy."""
    return duration_s + _ESTIMATE_S[kind]


def plan_faults(
    rng: random.Random, services: Sequence[str], options: ChaosOptions
) -> list[PlannedFault]:
    """The schedule: faults one at a time, the spare time spread over the gaps between them.

    Raises ``ValueError`` when the faults cannot fit in ``options.duration_s``.
    """
    if not services:
        raise ValueError("no service to disturb")
    faults = _fault_list(rng, services, options)
    busy = sum(busy_time(kind, d) for kind, _, d in faults)
    gaps = len(faults) + 1  # before each fault (after the lead-in) and at the end
    needed = options.lead_in_s + busy + gaps * options.min_gap_s
    slack = options.duration_s - needed
    if slack < 0:
        raise ValueError(
            f"{len(faults)} faults need at least {needed:.0f}s of schedule "
            f"(--duration {options.duration_s:g}); raise the duration or lower the kills"
        )
    weights = [rng.random() + 0.05 for _ in range(gaps)]
    total = sum(weights)
    extra = [slack * w / total for w in weights]
    planned: list[PlannedFault] = []
    at = options.lead_in_s
    for i, (kind, target, duration) in enumerate(faults):
        at += options.min_gap_s + extra[i]
        planned.append(PlannedFault(round(at, 2), kind, target, duration))
        at += busy_time(kind, duration)
    return planned


# -- flow at least once -------------------------------------------------------------------------


def flow_check_ok(check: FlowCheck) -> bool:
    """A CDC op arrived at least as often as committed (re-emits after a relay restart are
    allowed: consumers absorb them); an op never committed must not appear; user events exactly
    (their producer is idempotent)."""
    if check.topic == USER_EVENTS_TOPIC or check.expected == 0:
        return check.actual == check.expected
    return check.actual >= check.expected


def flow_ok(checks: Sequence[FlowCheck], *, resnapshot: bool = False) -> bool:
    """Every op arrived as ``flow_check_ok`` says. After a relay ran its snapshot again
    (``relay_resnapshot``: its offsets were deleted), the changes committed while it was down
    arrive as reads of the new snapshot, not as creates, updates and deletes: the CDC topics
    cannot be compared op by op any more, only ``user-events`` can; whether the read models
    equal the source is the verification's to say."""
    if resnapshot:
        checks = [c for c in checks if c.topic == USER_EVENTS_TOPIC]
    return bool(checks) and all(flow_check_ok(c) for c in checks)


def topic_events(checks: Sequence[FlowCheck]) -> list[TopicEvents]:
    committed: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for c in checks:
        committed[c.topic] += c.expected
        seen[c.topic] += c.actual
    return [
        TopicEvents(t, committed[t], seen[t], max(0, seen[t] - committed[t]))
        for t in (*CDC_TOPICS, USER_EVENTS_TOPIC)
        if t in committed or t in seen
    ]
