"""Faults that overlap, and the streams that run under every fault (``ChaosOptions.overlap``).

Each of these injects two or more faults at once, because the guarantee must hold for the
combination, not only for each alone:

* ``outage_rebalance``: the target's store goes down (the sink PostgreSQL stops for the event
  store and the statistics; AWS answers with throttling errors for the search index and the
  data lake), and while the service retries, a replica joins its group and takes partitions
  (a rebalance during a retry pause); the replica leaves after the outage (another one);
* ``kill_in_retry``: the same outage, and the service is SIGKILLed while its batch waits out
  the failure (a write that never reached its commit), then started again during the outage;
* ``zombie``: a replica joins and holds partitions, then the original is SIGSTOPped past its
  session timeout (the group gives everything to the replica), SIGCONTed, and finds its
  partitions taken: its writes must be fenced, nothing overwritten or moved backwards;
* ``aws_throttle``: the AWS emulator answers DynamoDB's ``ProvisionedThroughputExceeded`` and
  S3's ``SlowDown`` (HTTP 503) for most requests (through ``ThrottlingProxy``), not a pause;
* ``relay_resnapshot``: the Debezium relay is killed and its offsets deleted, so it runs the
  snapshot again: every row arrives again as a read (``op: r``) while changes stream on.

All along the schedule, ``RefusedStream`` produces records that parse but that every store
reading them refuses (``devstack.badinput.STORE_REFUSED``: a NUL in their text), and
``LagSampler`` keeps the highest consumer lag each service reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from devstack.badinput import STORE_REFUSED, Injected, inject_bad_records

if TYPE_CHECKING:
    from devstack._chaos_plan import ChaosOptions, PlannedFault
    from devstack._pipeline import Pipeline
    from devstack._services import ServiceProcess

# The topics where every consumer refuses a STORE_REFUSED record (badinput).
REFUSED_TOPICS = ("dbserver1.public.customers", "user-events")
# A replica needs a group join (a rebalance) before it holds partitions; tansu makes a join
# wait for departed members' session timeout.
_JOIN_TIMEOUT_S = 60.0
# After an outage or a stall ends: time for the services to resume before the next step.
_SETTLE_S = 5.0
# Share of AWS requests answered with a throttling error during ``aws_throttle``: most, not
# all, so botocore's own retries sometimes win and sometimes the runtime's backoff takes over.
_THROTTLE_SHARE = 0.8


class OverlapFaults:
    """The overlapping faults, mixed into ``ChaosDriver`` (which provides these attributes)."""

    pipeline: Pipeline
    options: ChaosOptions
    _undo: dict[str, Callable[[], None]]
    _down: set[int]
    _relay_down: bool

    def _sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def _service(self, name: str) -> ServiceProcess:
        raise NotImplementedError

    # -- the pieces ---------------------------------------------------------------------------

    def _outage(self, target: str) -> tuple[str, Callable[[], None]]:
        """Take the target's store down; returns what was done and how to undo it."""
        spec = self.pipeline.spec(target)
        if spec.database is not None:
            sink = self.pipeline.stack.sink

            def start_again() -> None:
                if not sink.process.running:
                    sink.start()

            sink.stop()
            return "sink PostgreSQL stopped", start_again
        proxy = self.pipeline.aws_proxy
        if proxy is not None:
            proxy.throttle(1.0)
            return "AWS answering throttling errors", proxy.clear
        aws = self.pipeline.stack.aws.process
        aws.pause()
        return "AWS emulator paused", aws.resume

    def _add_replica(self, target: str) -> ServiceProcess:
        replica = self.pipeline.add_replica(target)

        def remove() -> None:
            self._remove_replica(replica)

        self._undo[f"replica {replica.name}"] = remove
        return replica

    def _remove_replica(self, replica: ServiceProcess) -> int | None:
        self._down.add(id(replica))
        try:
            if replica in self.pipeline.services:
                return self.pipeline.remove_replica(replica)
            return None
        finally:
            self._down.discard(id(replica))
            self._undo.pop(f"replica {replica.name}", None)

    def _wait_holding(self, svc: ServiceProcess, timeout: float) -> bool:
        from devstack.chaos import assigned_partitions

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (assigned_partitions(svc) or 0) > 0:
                return True
            self._sleep(0.5)
        return False

    # -- the faults ---------------------------------------------------------------------------

    def _fault_outage_rebalance(self, planned: PlannedFault) -> str:
        what, undo = self._outage(planned.target)
        self._undo["outage"] = undo
        started = time.monotonic()
        try:
            self._sleep(2.0)  # the service is retrying its batch, partitions paused
            replica = self._add_replica(planned.target)
            joined = self._wait_holding(replica, max(1.0, planned.duration_s - 2.0))
            self._sleep(max(0.0, planned.duration_s - (time.monotonic() - started)))
        finally:
            undo()
            self._undo.pop("outage", None)
        down = time.monotonic() - started
        self._sleep(_SETTLE_S)
        rc = self._remove_replica(replica)
        return (
            f"{what} for {down:.0f}s; {replica.name} joined during it "
            f"({'took partitions' if joined else 'no partitions yet'}), left after (exit {rc})"
        )

    def _fault_kill_in_retry(self, planned: PlannedFault) -> str:
        what, undo = self._outage(planned.target)
        self._undo["outage"] = undo
        svc = self._service(planned.target)
        started = time.monotonic()
        try:
            self._sleep(3.0)  # its batch waits out the failure: handed over, not durable
            old = svc.process.pid
            self._down.add(id(svc))
            try:
                svc.process.kill()
                self._sleep(1.0)
                svc.start()
            finally:
                self._down.discard(id(svc))
            self._sleep(max(0.0, planned.duration_s - (time.monotonic() - started)))
        finally:
            undo()
            self._undo.pop("outage", None)
        return (
            f"{what} for {time.monotonic() - started:.0f}s; pid {old} SIGKILLed mid-retry, "
            f"started again as pid {svc.process.pid} during the outage"
        )

    def _fault_zombie(self, planned: PlannedFault) -> str:
        svc = self._service(planned.target)
        replica = self._add_replica(planned.target)
        joined = self._wait_holding(replica, _JOIN_TIMEOUT_S)
        self._undo["zombie"] = svc.process.resume
        svc.process.pause()
        try:
            self._sleep(planned.duration_s)  # past the session timeout: the group moves on
        finally:
            svc.process.resume()
            self._undo.pop("zombie", None)
        self._sleep(_SETTLE_S)  # it wakes: fenced, its partitions lost; it rejoins
        taken_over = (self._assigned(replica) or 0) > 0
        rc = self._remove_replica(replica)
        return (
            f"{replica.name} joined ({'holding partitions' if joined else 'not yet holding'}); "
            f"pid {svc.process.pid} SIGSTOPped {planned.duration_s:g}s (session timeout "
            f"{self.options.session_timeout_ms / 1000:g}s), SIGCONTed; the replica "
            f"{'held' if taken_over else 'did not hold'} partitions after, then left (exit {rc})"
        )

    def _assigned(self, svc: ServiceProcess) -> float | None:
        from devstack.chaos import assigned_partitions

        return assigned_partitions(svc)

    def _fault_aws_throttle(self, planned: PlannedFault) -> str:
        proxy = self.pipeline.aws_proxy
        if proxy is None:
            raise RuntimeError("aws_throttle needs the pipeline's AWS proxy (aws_faults=True)")
        proxy.stats(reset=True)
        self._undo["aws_throttle"] = proxy.clear
        proxy.throttle(_THROTTLE_SHARE)
        try:
            self._sleep(planned.duration_s)
        finally:
            proxy.clear()
            self._undo.pop("aws_throttle", None)
        stats = proxy.stats(reset=True)
        return (
            f"{_THROTTLE_SHARE:.0%} of AWS requests answered with throttling errors for "
            f"{planned.duration_s:g}s: {stats}"
        )

    def _fault_relay_resnapshot(self, planned: PlannedFault) -> str:
        relay = self.pipeline.stack.relay
        if relay is None:
            raise RuntimeError("no relay")
        old_pid = relay.process.pid
        self._undo["relay_resnapshot"] = relay.kill
        self._relay_down = True
        try:
            relay.kill()
            offsets: Path = relay.config.offsets_file
            offsets.unlink(missing_ok=True)
            self._sleep(planned.duration_s)
            relay.start()  # snapshots every table again, then streams
        finally:
            self._relay_down = False
            self._undo.pop("relay_resnapshot", None)
        return f"SIGKILL pid {old_pid}, offsets deleted: snapshot again as pid {relay.process.pid}"


class RefusedStream(threading.Thread):
    """Records every store refuses, produced every ``every_s`` until stopped."""

    def __init__(self, bootstrap: str, every_s: float, run_id: str) -> None:
        super().__init__(name="refused-records", daemon=True)
        self._broker = bootstrap
        self._every_s = every_s
        self._run_id = run_id
        self._halt = threading.Event()
        self.injected: list[Injected] = []
        self.errors: list[str] = []

    def run(self) -> None:
        n = 0
        while not self._halt.wait(self._every_s):
            n += 1
            try:
                injection = inject_bad_records(
                    self._broker,
                    topics=REFUSED_TOPICS,
                    kinds=[STORE_REFUSED],
                    run_id=f"{self._run_id}-{n}",
                    sample_timeout=10.0,
                )
            except Exception as exc:  # the broker may be paused: try again next round
                self.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            self.injected.extend(injection.records)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)


class LagSampler(threading.Thread):
    """The highest consumer lag each service reported (``/metrics``), every ``every_s``."""

    def __init__(self, pipeline: Pipeline, every_s: float = 2.0) -> None:
        super().__init__(name="lag-sampler", daemon=True)
        self._pipeline = pipeline
        self._every_s = every_s
        self._halt = threading.Event()
        self.max_lag: dict[str, float] = {}

    def run(self) -> None:
        while not self._halt.wait(self._every_s):
            for svc in list(self._pipeline.services):
                try:
                    lag = svc.status().lag
                except Exception:  # noqa: S112 - a paused or restarting service answers nothing
                    continue
                name = svc.spec.name
                self.max_lag[name] = max(self.max_lag.get(name, 0.0), lag)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
