"""Processes that exit on their own during a chaos run, mixed into ``ChaosDriver``.

While the driver waits (between faults, during one, while draining and verifying), it checks
the processes: a service or the relay that exited without being told to is recorded as an
unexpected exit and started again, a service after a doubling back-off, as Kubernetes restarts
a crashed container. A simulator that failed ends the run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from devstack._chaos_plan import FaultRecord

if TYPE_CHECKING:
    from devstack._pipeline import Pipeline

# A service that exits on its own is started again after this (doubling, capped) back-off.
_RESTART_BACKOFF_S: Final = (2.0, 15.0)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ProcessWatch:
    """Unexpected exits, recorded and restarted; mixed into ``ChaosDriver`` (which provides
    these attributes)."""

    pipeline: Pipeline
    on_fault: Callable[[FaultRecord, Literal["begin", "end"]], None] | None
    unexpected_exits: list[FaultRecord]
    _down: set[int]
    _relay_down: bool
    _restarts: Counter[int]
    _restart_at: dict[int, float]
    _t0: float

    def _check_processes(self) -> None:
        """Record a service that exited without being told to, and start it again (with a
        back-off), as Kubernetes restarts a crashed container."""
        if self.pipeline.simulator_error is not None:
            raise RuntimeError(f"the simulator failed: {self.pipeline.simulator_error!r}")
        now = time.monotonic()
        relay = self.pipeline.stack.relay
        if relay is not None and not self._relay_down and not relay.process.running:
            self._unexpected_exit("relay", relay.process.returncode, relay.process.log_path)
            self._relay_down = True
            try:
                relay.start()
            finally:
                self._relay_down = False
        for svc in list(self.pipeline.services):
            key = id(svc)
            if key in self._down or svc.process.running:
                continue
            if key not in self._restart_at:
                n = self._restarts[key]
                self._restart_at[key] = now + min(
                    _RESTART_BACKOFF_S[0] * 2**n, _RESTART_BACKOFF_S[1]
                )
                self._unexpected_exit(svc.name, svc.process.returncode, svc.log_path)
            elif now >= self._restart_at[key]:
                del self._restart_at[key]
                self._restarts[key] += 1
                svc.start()

    def _unexpected_exit(self, target: str, returncode: int | None, log: Path) -> None:
        record = FaultRecord(
            seq=0,
            kind="unexpected_exit",
            target=target,
            planned_at_s=0.0,
            at_s=round(time.monotonic() - self._t0, 2) if self._t0 else 0.0,
            wall_time=now_iso(),
            detail=f"exit code {returncode}; log {log}",
            done=True,
        )
        self.unexpected_exits.append(record)
        if self.on_fault is not None:
            self.on_fault(record, "end")
