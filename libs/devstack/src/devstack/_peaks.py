"""``make up``'s figures *throughout* a run: per service, from when it caught up with the start,
its largest lag and largest p99 of a refresh, and its p99 over that time.

A service joins its group while the simulator already writes, and reads the snapshot and that
backlog first: that is start-up, not the steady state the figures describe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.table import Table

from devstack._services import ServiceProcess, ServiceStatus

__all__ = ["CAUGHT_UP_LAG", "SETTLE_S", "Peaks", "caught_up_with_start"]

# A service has caught up with the start when it has written this many records and its lag
# has fallen to this many (about 2 s of the simulator's changes at 300 transactions/s).
CAUGHT_UP_LAG = 2000
# Peaks count from this long after a service caught up: what it wrote before is reported
# durable within a batch or two (a sink writing in the background reports a batch at the next).
SETTLE_S = 2.0


def caught_up_with_start(st: ServiceStatus) -> bool:
    """Whether a service has caught up with the start of a run: it is ready, has written its
    first batches (the snapshot and the first changes arrive at once, a few seconds in) and its
    lag, as it reported it (none reported yet is not known, not zero), has come down."""
    return (
        st.ready and st.processed >= CAUGHT_UP_LAG and st.lag_reported and st.lag <= CAUGHT_UP_LAG
    )


@dataclass
class _Since:
    at: float  # when it caught up (s into the run)
    baseline: dict[float, float] = field(default_factory=dict)  # latency histogram then
    counted: bool = False  # settled: refreshes count from here
    lag: float = 0.0  # the largest since
    p99: float = 0.0  # the largest recent p99 since (s)


class Peaks:
    def __init__(self) -> None:
        self._since: dict[str, _Since] = {}

    def track(self, svc: ServiceProcess, st: ServiceStatus, elapsed: float) -> None:
        """One refresh of ``svc``'s status, ``elapsed`` seconds into the run."""
        since = self._since.get(svc.name)
        if since is None:
            if caught_up_with_start(st):
                self._since[svc.name] = _Since(elapsed)
            return
        if not since.counted:
            if elapsed - since.at < SETTLE_S:
                return  # what it wrote before catching up is still being reported
            since.counted, since.baseline = True, svc.latency_seen
            return
        since.lag = max(since.lag, st.lag)
        since.p99 = max(since.p99, st.latency_p99_s or 0.0)

    def caught_up_at(self, name: str) -> float | None:
        since = self._since.get(name)
        return since.at if since is not None and since.counted else None

    def largest(self, name: str) -> tuple[float, float] | None:
        """(lag, recent p99) at their largest since ``name`` caught up and settled."""
        since = self._since.get(name)
        return (since.lag, since.p99) if since is not None and since.counted else None

    def table(self, services: Sequence[ServiceProcess]) -> Table:
        table = Table(title="while the simulator ran, once each service caught up", expand=False)
        columns = ("service", "caught up at", "max lag", "max p99 e2e (recent)", "p99 e2e")
        for col in (*columns, "p99 e2e (whole run)"):
            table.add_column(col, justify="left" if col == "service" else "right")
        for svc in services:
            whole = seconds(svc.p99_since())
            since = self._since.get(svc.name)
            if since is None or not since.counted:
                table.add_row(svc.name, "never", "-", "-", "-", whole)
                continue
            table.add_row(
                svc.name,
                f"{since.at:.0f}s",
                f"{since.lag:.0f}",
                f"{since.p99:.2f}s",
                seconds(svc.p99_since(since.baseline)),
                whole,
            )
        return table


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"
