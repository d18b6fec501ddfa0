"""The single faults of a chaos schedule, mixed into ``ChaosDriver`` (``devstack.chaos``).

One outage at a time, each one a production system must survive on its own: a service or the
Debezium relay SIGKILLed and started again, the broker or the AWS emulator paused
(SIGSTOP/SIGCONT), the sink PostgreSQL stopped and started again on the same data, a replica
added to a service's group and later removed (two rebalances). Each registers how to undo
itself while it is on (``_undo``), so whatever stops the driver half-way, ``_restore`` leaves
nothing paused or stopped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack._chaos_plan import PlannedFault
    from devstack._pipeline import Pipeline
    from devstack._services import ServiceProcess


class SingleFaults:
    """The single faults, mixed into ``ChaosDriver`` (which provides these attributes)."""

    pipeline: Pipeline
    _undo: dict[str, Callable[[], None]]
    _down: set[int]
    _relay_down: bool
    _replica: ServiceProcess | None

    def _sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def _service(self, name: str) -> ServiceProcess:
        raise NotImplementedError

    def _fault_service_kill(self, planned: PlannedFault) -> str:
        svc = self._service(planned.target)
        old_pid = svc.process.pid if svc.process.running else None
        self._down.add(id(svc))
        self._undo["service_kill"] = svc.process.kill  # left dead: close() reaps it
        try:
            svc.process.kill()
            self._sleep(planned.duration_s)
            svc.start()
        finally:
            self._down.discard(id(svc))
            self._undo.pop("service_kill", None)
        return f"SIGKILL pid {old_pid}; started again as pid {svc.process.pid}"

    def _fault_relay_restart(self, planned: PlannedFault) -> str:
        relay = self.pipeline.stack.relay
        if relay is None:
            raise RuntimeError("no relay")
        before = sum(relay.status().get("produced", {}).values())
        old_pid = relay.process.pid
        self._undo["relay_restart"] = relay.kill
        self._relay_down = True
        try:
            relay.kill()
            self._sleep(planned.duration_s)
            relay.start()  # waits until Debezium streams again
        finally:
            self._relay_down = False
            self._undo.pop("relay_restart", None)
        return (
            f"SIGKILL pid {old_pid} after {before} records produced; streaming again as "
            f"pid {relay.process.pid}"
        )

    def _fault_broker_pause(self, planned: PlannedFault) -> str:
        return self._pause(self.pipeline.stack.broker.process, "broker", planned.duration_s)

    def _fault_aws_pause(self, planned: PlannedFault) -> str:
        return self._pause(self.pipeline.stack.aws.process, "aws", planned.duration_s)

    def _pause(self, process: Any, name: str, seconds: float) -> str:
        self._undo[f"{name}_pause"] = process.resume
        try:
            process.pause()
            self._sleep(seconds)
        finally:
            process.resume()
            self._undo.pop(f"{name}_pause", None)
        return f"SIGSTOP pid {process.pid} for {seconds:g}s, then SIGCONT"

    def _fault_sink_stop(self, planned: PlannedFault) -> str:
        sink = self.pipeline.stack.sink

        def start_again() -> None:
            if not sink.process.running:
                sink.start()

        self._undo["sink_stop"] = start_again  # kept if this fails: _restore starts it
        sink.stop()
        self._sleep(planned.duration_s)
        sink.start()
        self._undo.pop("sink_stop", None)
        return f"fast shutdown, down {planned.duration_s:g}s, started again on the same data"

    def _fault_replica_add(self, planned: PlannedFault) -> str:
        svc = self.pipeline.add_replica(planned.target)
        self._replica = svc
        return f"{svc.name} started (pid {svc.process.pid}) in group {svc.group_id}"

    def _fault_replica_remove(self, planned: PlannedFault) -> str:
        svc = self._replica
        if svc is None:
            raise RuntimeError("no replica to remove")
        self._down.add(id(svc))
        try:
            rc = self.pipeline.remove_replica(svc)
        finally:
            self._down.discard(id(svc))
        self._replica = None
        return f"{svc.name} SIGTERM: exit code {rc}"

    def _restore(self) -> None:
        """Undo whatever a fault left half-done: resume paused servers, start the sink
        database again (the services' final flush needs it); killed processes stay dead."""
        for name, action in reversed(list(self._undo.items())):
            with contextlib.suppress(Exception):
                action()
            self._undo.pop(name, None)
        with contextlib.suppress(Exception):
            stack = self.pipeline.stack
            stack.broker.process.resume()
            stack.aws.process.resume()
