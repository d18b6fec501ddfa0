"""Chaos over the whole pipeline: faults injected while the simulator runs, then proof that
every read model still equals the source database.

A :class:`ChaosDriver` drives a started :class:`~devstack.Pipeline`. With ``random.Random(seed)``
it plans a schedule (:func:`plan_faults`: which faults, in which order, which targets, when) and
injects the faults one at a time, with a gap between them, so every outage is one a production
system must survive on its own (``_chaos_faults``):

* ``service_kill``: SIGKILL of a service process (a crashed pod), started again after a pause;
* ``relay_restart``: SIGKILL of the Debezium relay, started again: Debezium resumes from its
  stored offsets and re-emits what the broker had not acknowledged;
* ``broker_pause``: SIGSTOP/SIGCONT of the broker (memory storage: a restart would lose every
  topic, so an outage is a pause);
* ``sink_stop``: fast shutdown of the sink PostgreSQL (event store, statistics), started again
  on the same data directory;
* ``aws_pause``: SIGSTOP/SIGCONT of the AWS emulator (S3, DynamoDB; memory storage);
* ``replica_add`` / ``replica_remove``: a second process in a service's consumer group, removed
  later with SIGTERM (two rebalances); other faults happen while it runs.

With ``overlap``, also the faults of ``_chaos_overlap`` and ``clock_skew`` (``_chaos_skew``:
times far in the future and the past; after verification, ``ChaosResult.clocks`` says whether
the statistics' as-of or the lake's lateness froze).

Every fault is logged with its wall time, offset, kind, target and duration. Whatever happens to
the driver (an exception, Ctrl-C), paused processes are resumed and the sink database started
again (``try``/``finally``); the caller's ``Pipeline.close()`` then stops everything. A service
that exits on its own during the run is recorded as an unexpected exit and started again, like
Kubernetes would (``_chaos_watch``).

After the schedule the simulator stops, the driver waits until every committed change is in the
broker (at least once: a relay restart re-emits changes), and verification compares every read
model with the source database; its elapsed time is the time to converge.

The same seed gives the same schedule and the same simulated workload: ``cdc dev chaos --seed``.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Final, Literal

from devstack._chaos_clocks import metric_total
from devstack._chaos_faults import SingleFaults
from devstack._chaos_overlap import LagSampler, OverlapFaults, RefusedStream
from devstack._chaos_plan import (
    FAULT_KINDS,
    OVERLAP_KINDS,
    ChaosOptions,
    ChaosResult,
    FaultRecord,
    PlannedFault,
    TopicEvents,
    busy_time,
    flow_check_ok,
    flow_ok,
    plan_faults,
    topic_events,
)
from devstack._chaos_skew import ClockSkewFault
from devstack._chaos_watch import ProcessWatch, now_iso
from devstack._flow import FlowMonitor
from devstack._kafka_io import read_topic
from devstack._pipeline import FlowCheck, Pipeline, flow_checks
from devstack._services import SERVICES, ServiceProcess
from devstack.badinput import HEADER_ID, STORE_REJECTED, consumers_of, discount_injected
from devstack.simulator import Ledger
from devstack.verify import verify

__all__ = [
    "FAULT_KINDS",
    "OVERLAP_KINDS",
    "ChaosDriver",
    "ChaosOptions",
    "ChaosResult",
    "FaultRecord",
    "Phase",
    "PlannedFault",
    "TopicEvents",
    "assigned_partitions",
    "busy_time",
    "flow_check_ok",
    "flow_ok",
    "plan_faults",
    "run_chaos",
    "topic_events",
]


_POLL_S: Final = 0.25

Phase = Literal["begin", "end"]


# -- the driver ---------------------------------------------------------------------------------


def assigned_partitions(svc: ServiceProcess) -> float | None:
    """``cdc_assigned_partitions`` of a service, or None when it does not answer."""
    return metric_total(svc.metrics_url, "cdc_assigned_partitions")


class ChaosDriver(SingleFaults, OverlapFaults, ClockSkewFault, ProcessWatch):
    """Injects a seeded fault schedule into a started pipeline, then drains and verifies."""

    def __init__(
        self,
        pipeline: Pipeline,
        options: ChaosOptions,
        *,
        on_fault: Callable[[FaultRecord, Phase], None] | None = None,
        on_phase: Callable[[str], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.options = options
        self.seed = options.seed if options.seed is not None else pipeline.seed
        self.rng = random.Random(self.seed)
        self.on_fault = on_fault
        self.on_phase = on_phase
        self.planned: list[PlannedFault] = []
        self.faults: list[FaultRecord] = []
        self.unexpected_exits: list[FaultRecord] = []
        self.problems: list[str] = []
        # What must be undone if the driver stops half-way: name -> action.
        self._undo: dict[str, Callable[[], None]] = {}
        # Processes down on purpose right now (not an unexpected exit).
        self._down: set[int] = set()
        self._replica: ServiceProcess | None = None
        self._relay_down = False
        self._restarts: Counter[int] = Counter()
        self._restart_at: dict[int, float] = {}
        self._t0 = 0.0
        self._sim_started = time.monotonic()
        self._refused: RefusedStream | None = None
        self._lag: LagSampler | None = None

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> ChaosResult:
        """Schedule, then stop the simulator, drain and verify. The pipeline must be started."""
        p = self.pipeline
        if p.simulator is None:
            raise RuntimeError("start the pipeline (with its simulator) before the chaos")
        self._sim_started = time.monotonic()
        self.planned = plan_faults(
            self.rng, sorted({s.spec.name for s in p.services}), self.options
        )
        try:
            self._phase("waiting until every service holds partitions")
            self._wait_assigned()
            self._lag = LagSampler(p)
            self._lag.start()
            if self.options.overlap:
                self._refused = RefusedStream(
                    p.stack.broker.bootstrap, self.options.refused_every_s, f"chaos{self.seed}"
                )
                self._refused.start()
            self._t0 = time.monotonic()
            self._phase(f"injecting {len(self.planned)} faults over {self.options.duration_s:g}s")
            ended = self._t0
            for seq, planned in enumerate(self.planned, 1):
                # On plan, but never sooner than a gap after the previous fault was undone.
                self._sleep_until(max(self._t0 + planned.at_s, ended + self.options.min_gap_s))
                self._inject(seq, planned)
                ended = time.monotonic()
                self._revive_flow_monitor()
            self._sleep_until(max(self._t0 + self.options.duration_s, ended))
        finally:
            if self._refused is not None:
                self._refused.stop()
            self._restore()
        ledger = p.stop_simulator()
        simulated = time.monotonic() - self._sim_started
        self._phase("simulator stopped; waiting until every committed change is in the broker")
        flow = self._drain(ledger)
        self._phase(
            "verifying every read model against the source database "
            f"(until equal, at most {self.options.verify_timeout_s:g}s)"
        )
        report = verify(
            p.info(),
            timeout_s=self.options.verify_timeout_s,
            on_attempt=lambda _n, _checks: self._check_processes(),
        )
        if self._lag is not None:
            self._lag.stop()
        dead_lettered, refused_missing = self._dead_letters()
        clocks = self._clock_check()
        return ChaosResult(
            seed=self.seed,
            options=self.options,
            planned=self.planned,
            faults=self.faults,
            unexpected_exits=self.unexpected_exits,
            events=topic_events(flow),
            flow=flow,
            report=report,
            simulated_s=simulated,
            transactions=sum(ledger.operations.values()),
            activity_events=ledger.activity_events,
            problems=list(self.problems),
            refused=[(r.topic, r.partition, r.offset) for r in self._injected()],
            refused_missing=refused_missing,
            dead_lettered=dead_lettered,
            max_lag=dict(self._lag.max_lag) if self._lag is not None else {},
            clocks=clocks,
        )

    def _injected(self) -> list[Any]:
        return [] if self._refused is None else list(self._refused.injected)

    def _dead_letters(self) -> tuple[dict[str, int], list[str]]:
        """Records in each DLQ topic, and every refused record a consumer did not dead-letter
        with ``store_rejected`` (at least once: a kill may repeat one)."""
        info = self.pipeline.info()
        counts: dict[str, int] = {}
        missing: list[str] = []
        injected = self._injected()
        for svc in sorted({s.spec.name for s in self.pipeline.services}):
            dlq = read_topic(info.bootstrap, f"{svc}.dlq", expected=None, timeout=60, idle=3)
            counts[svc] = len(dlq)
            seen = set()
            for m in dlq:
                headers = dict(m.headers)
                if headers.get("__cdc.errors.code") == STORE_REJECTED.encode():
                    seen.add(headers.get(HEADER_ID, b"").decode())
            for rec in injected:
                if svc in consumers_of(rec.topic) and rec.ident not in seen:
                    missing.append(f"{svc}: {rec.topic}[{rec.partition}]@{rec.offset}")
        return counts, missing

    def _phase(self, text: str) -> None:
        if self.on_phase is not None:
            self.on_phase(text)

    def _wait_assigned(self) -> None:
        deadline = time.monotonic() + self.options.wait_assigned_s
        while time.monotonic() < deadline:
            counts = [assigned_partitions(s) for s in self.pipeline.services]
            if all(c is not None and c > 0 for c in counts):
                return
            self._sleep(1.0)

    def _drain(self, ledger: Ledger) -> list[FlowCheck]:
        p = self.pipeline
        self._revive_flow_monitor()
        assert p.monitor is not None
        deadline = time.monotonic() + self.options.drain_timeout_s
        while True:
            checks = discount_injected(
                flow_checks(p.seeded, ledger, p.monitor.snapshot()), self._injected()
            )
            resnapshot = any(f.kind == "relay_resnapshot" and f.done for f in self.faults)
            if flow_ok(checks, resnapshot=resnapshot) or time.monotonic() > deadline:
                return checks
            self._sleep(0.5)
            self._revive_flow_monitor()

    def _revive_flow_monitor(self) -> None:
        """The flow monitor's thread ends when a metadata request times out (the broker was
        paused); a new one counts again from the beginning of every topic."""
        p = self.pipeline
        if p.monitor is None or p.monitor.is_alive():
            return
        self.problems.append("the flow monitor stopped (broker unreachable); started a new one")
        p.monitor = FlowMonitor(p.stack.broker.bootstrap, p.topics)
        p.monitor.start()

    # -- time (processes that exit on their own: ``ProcessWatch``) ---------------------------

    def _sleep(self, seconds: float) -> None:
        self._sleep_until(time.monotonic() + seconds)

    def _sleep_until(self, when: float) -> None:
        while True:
            self._check_processes()
            left = when - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(_POLL_S, left))

    # -- faults (the single ones: ``SingleFaults``) ----------------------------------------------

    def _inject(self, seq: int, planned: PlannedFault) -> None:
        record = FaultRecord(seq, planned.kind, planned.target, planned.at_s)
        record.at_s = round(time.monotonic() - self._t0, 2)
        record.wall_time = now_iso()
        self.faults.append(record)
        if self.on_fault is not None:
            self.on_fault(record, "begin")
        started = time.monotonic()
        try:
            action = getattr(self, f"_fault_{planned.kind}")
            record.detail = action(planned)
            record.done = True
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record.duration_s = round(time.monotonic() - started, 2)
            if self.on_fault is not None:
                self.on_fault(record, "end")

    def _service(self, name: str) -> ServiceProcess:
        for svc in self.pipeline.services:
            if svc.spec.name == name and svc.replica == 0:
                return svc
        raise KeyError(f"no running service {name!r}")


def run_chaos(
    work_dir: Path,
    options: ChaosOptions,
    *,
    on_fault: Callable[[FaultRecord, Phase], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    on_driver: Callable[[ChaosDriver], None] | None = None,
) -> ChaosResult:
    """Start the pipeline, run the chaos, stop everything; the seed is shared by the simulator
    and the schedule, so ``options.seed`` replays both."""
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**32)
    options = replace(options, seed=seed)
    # The same plan the driver will make (same seed, same services): refuse an impossible one
    # before a minute of start-up, and show it.
    names = sorted({spec.name for spec in SERVICES if spec.available})
    planned = plan_faults(random.Random(seed), names, options)
    if on_phase is not None:
        on_phase("schedule: " + ", ".join(f"+{f.at_s:.0f}s {f.kind} {f.target}" for f in planned))
    pipeline = Pipeline(
        work_dir,
        rate=options.rate,
        seed=seed,
        consumer_extra=_chaos_consumer_extra(options),
        aws_faults=options.overlap,
    )
    driver = ChaosDriver(pipeline, options, on_fault=on_fault, on_phase=on_phase)
    if on_driver is not None:
        on_driver(driver)
    result: ChaosResult | None = None
    try:
        if on_phase is not None:
            on_phase("starting the stack, the Debezium snapshot, the services and the simulator")
        pipeline.start()
        result = driver.run()
        return result
    finally:
        problems = pipeline.close()
        if result is not None:
            result.problems.extend(problems)


def _chaos_consumer_extra(options: ChaosOptions) -> dict[str, str | int]:
    """A short session timeout (heartbeats at a third of it), so a stalled member is replaced
    within the run, as a zombie fault needs."""
    if not options.overlap:
        return {}
    return {
        "session.timeout.ms": options.session_timeout_ms,
        "heartbeat.interval.ms": max(1000, options.session_timeout_ms // 3),
    }
