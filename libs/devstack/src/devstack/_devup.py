"""``make up`` / ``cdc dev up``: the embedded stack with the simulator and a live view.

Order of start: broker, PostgreSQL (source, sink), AWS emulator, seed rows, the Debezium relay
(progress bar while its snapshot runs), then the simulator. Order of stop (Ctrl-C, SIGTERM or
the end of ``--duration``): simulator, then drain (wait until every committed change reached the
broker), relay, then the servers. A bounded run ends with a check that every change the
simulator committed arrived in its topic as the right Debezium op, and exits non-zero if not.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devstack._flow import FlowMonitor
from devstack._services import SERVICES, ServiceProcess
from devstack._shop import SHOP_TABLES
from devstack._stack import TOPIC_PREFIX, Stack
from devstack.simulator import USER_EVENTS_TOPIC, Ledger, ShopSimulator

# After the simulator stops, Debezium needs a moment to stream the tail; 60 s is generous.
_DRAIN_TIMEOUT_S = 60.0
_REFRESH_PER_S = 2
# Rates shown are averaged over this many seconds, so they do not flicker with batching.
_RATE_WINDOW_S = 5.0


@dataclass(frozen=True)
class FlowCheck:
    topic: str
    op: str
    expected: int
    actual: int

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


def expected_flow(seeded: dict[str, int], ledger: Ledger) -> dict[str, Counter[str]]:
    """Per CDC topic, the Debezium ops the committed changes must produce: one ``r`` per seeded
    row, one ``c``/``u``/``d`` per committed row change, one tombstone per delete."""
    out: dict[str, Counter[str]] = {}
    for table in SHOP_TABLES:
        ops = Counter({"r": seeded.get(table, 0)})
        ops.update(ledger.changes.get(table, Counter()))
        ops["tombstone"] = ops["d"]
        out[f"{TOPIC_PREFIX}.public.{table}"] = +ops
    return out


def flow_checks(
    seeded: dict[str, int], ledger: Ledger, seen: dict[str, Counter[str]]
) -> list[FlowCheck]:
    checks = []
    for topic, ops in expected_flow(seeded, ledger).items():
        got = seen.get(topic, Counter())
        for op in sorted(set(ops) | set(got)):
            checks.append(FlowCheck(topic, op, ops.get(op, 0), got.get(op, 0)))
    checks.append(
        FlowCheck(
            USER_EVENTS_TOPIC,
            "event",
            ledger.activity_events,
            sum(seen.get(USER_EVENTS_TOPIC, Counter()).values()),
        )
    )
    return checks


class DevUp:
    def __init__(
        self,
        work_dir: Path,
        rate: float,
        duration: float,
        seed: int | None,
        console: Console | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.rate = rate
        self.duration = duration
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.console = console or Console()
        self.stack = Stack(work_dir, rng=random.Random(self.seed))
        self.topics = [f"{TOPIC_PREFIX}.public.{t}" for t in SHOP_TABLES] + [USER_EVENTS_TOPIC]
        self.monitor: FlowMonitor | None = None
        self.services: list[ServiceProcess] = []
        self.simulator: ShopSimulator | None = None
        self._stop = threading.Event()
        self._rates: dict[str, deque[tuple[float, int]]] = {}

    def request_stop(self, *_: Any) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting, tear down now
        self._stop.set()

    def run(self) -> int:
        previous = signal.signal(signal.SIGTERM, self.request_stop)
        try:
            return self._run()
        except KeyboardInterrupt:
            self.console.print("[yellow]interrupted, stopping[/]")
            return 130
        finally:
            self._teardown()
            signal.signal(signal.SIGTERM, previous)

    def _run(self) -> int:
        c = self.console
        c.rule("[bold]CDC platform: embedded stack")
        c.print(
            f"work dir {self.work_dir}   seed {self.seed}   rate {self.rate:g}/s   "
            f"duration {'until Ctrl-C' if not self.duration else f'{self.duration:g}s'}"
        )
        with c.status("starting broker, PostgreSQL (source + sink), AWS emulator..."):
            self.stack.start_servers()
            seeded = self.stack.seed_source()
        self._print_endpoints()
        relay = self.stack.launch_relay()
        self.monitor = FlowMonitor(self.stack.broker.bootstrap, self.topics)
        self.monitor.start()
        self._snapshot_progress(sum(seeded.values()))
        if self._stop.is_set():
            return 130
        self._start_services()
        self.simulator = ShopSimulator(
            self.stack.source_dsn,
            self.stack.broker.bootstrap,
            rate=self.rate,
            seed=self.seed,
            activity_log=self.work_dir / "user-events.jsonl",
        )
        sim_thread = threading.Thread(target=self._run_simulator, name="simulator", daemon=True)
        started = time.monotonic()
        sim_thread.start()
        interrupted = False
        try:
            with Live(self._view(started), console=c, refresh_per_second=_REFRESH_PER_S) as live:
                while not self._stop.wait(1 / _REFRESH_PER_S):
                    live.update(self._view(started))
                    if self.duration and time.monotonic() - started >= self.duration:
                        break
                    if not relay.process.running:
                        c.print(f"[red]the Debezium relay died:[/]\n{relay.process.log_tail()}")
                        return 1
        except KeyboardInterrupt:
            interrupted = True
        self.simulator.stop()
        sim_thread.join(timeout=30)
        self.simulator.flush()
        ledger = self.simulator.ledger
        c.print(
            f"simulator stopped after {time.monotonic() - started:.0f}s: "
            f"{sum(ledger.operations.values())} transactions, "
            f"{ledger.activity_events} user events; draining..."
        )
        checks = self._drain(seeded, ledger)
        self._print_checks(checks)
        ok = all(ch.ok for ch in checks)
        if interrupted:
            return 130
        return 0 if ok else 1

    def _start_services(self) -> None:
        available = [spec for spec in SERVICES if spec.available]
        missing = [spec.name for spec in SERVICES if not spec.available]
        if missing:
            self.console.print(f"[yellow]not installed yet, not started:[/] {', '.join(missing)}")
        env = self.stack.service_env()
        for spec in available:
            spec_env = dict(env)
            if spec.database:
                spec_env["DATABASE_URL"] = self.stack.sink.create_database(spec.database)
            self.services.append(ServiceProcess(spec, spec_env, self.work_dir).start())
        if self.services:
            table = Table(show_header=True, box=None, padding=(0, 2))
            table.add_column("service")
            table.add_column("metrics")
            table.add_column("log")
            for svc in self.services:
                table.add_row(
                    svc.spec.name, svc.metrics_url, str(self.work_dir / f"{svc.spec.name}.log")
                )
            self.console.print(Panel(table, title="services", expand=False))

    def _run_simulator(self) -> None:
        assert self.simulator is not None
        try:
            self.simulator.run()
        except Exception as exc:  # shown to the user; the run then fails its check
            self.console.print(f"[red]simulator failed: {exc!r}[/]")
            self._stop.set()

    def _snapshot_progress(self, rows: int) -> None:
        assert self.stack.relay is not None and self.monitor is not None
        relay = self.stack.relay
        progress = Progress(
            TextColumn("[bold]Debezium snapshot"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} rows"),
            TimeElapsedColumn(),
            console=self.console,
        )
        with progress:
            task = progress.add_task("snapshot", total=rows)
            while not self._stop.is_set():
                seen = self.monitor.snapshot()
                done = sum(
                    seen.get(f"{TOPIC_PREFIX}.public.{t}", Counter())["r"] for t in SHOP_TABLES
                )
                progress.update(task, completed=done)
                if done >= rows and relay.ready():
                    break
                time.sleep(0.2)
        self.console.print("[green]Debezium is streaming[/] (snapshot complete)")

    def _print_endpoints(self) -> None:
        s = self.stack
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_row("Kafka bootstrap", s.broker.bootstrap)
        table.add_row("source PostgreSQL", s.source.url("shop"))
        table.add_row("sink PostgreSQL", s.sink.url("sink"))
        table.add_row("AWS endpoint", s.aws.endpoint_url)
        table.add_row("logs", str(self.work_dir))
        self.console.print(Panel(table, title="where to look", expand=False))

    def _rate(self, key: str, total: int) -> float:
        """Records per second over the last few seconds."""
        now = time.monotonic()
        window = self._rates.setdefault(key, deque())
        window.append((now, total))
        while window and now - window[0][0] > _RATE_WINDOW_S:
            window.popleft()
        then, before = window[0]
        return (total - before) / (now - then) if now > then else 0.0

    def _view(self, started: float) -> Group:
        assert self.monitor is not None and self.simulator is not None
        relay = self.stack.relay
        status = relay.status() if relay else {}
        produced = status.get("produced", {})
        seen = self.monitor.snapshot()
        ledger = self.simulator.ledger
        table = Table(
            title=f"changes: source -> Debezium -> broker ({TOPIC_PREFIX}.public.*)", expand=False
        )
        for col in ("table", "committed", "Debezium", "broker", "r", "c", "u", "d", "tomb", "/s"):
            table.add_column(col, justify="left" if col == "table" else "right")
        for t in SHOP_TABLES:
            topic = f"{TOPIC_PREFIX}.public.{t}"
            ops = seen.get(topic, Counter())
            total = sum(ops.values())
            table.add_row(
                t,
                str(ledger.total(t) + self.stack.seeded_rows.get(t, 0)),
                str(produced.get(topic, 0)),
                str(total),
                *(str(ops.get(k, 0)) for k in ("r", "c", "u", "d", "tombstone")),
                f"{self._rate(topic, total):.0f}",
            )
        events = sum(seen.get(USER_EVENTS_TOPIC, Counter()).values())
        table.add_row(
            USER_EVENTS_TOPIC,
            str(ledger.activity_events),
            "-",
            str(events),
            "",
            "",
            "",
            "",
            "",
            f"{self._rate(USER_EVENTS_TOPIC, events):.0f}",
        )
        services = Table(title="services", expand=False)
        for col in ("service", "ready", "processed", "/s", "lag", "DLQ", "retries", "p99 e2e"):
            services.add_column(col, justify="left" if col == "service" else "right")
        for svc in self.services:
            st = svc.status()
            alive = svc.process.running
            services.add_row(
                svc.spec.name,
                "[green]yes[/]" if st.ready else ("[red]exited[/]" if not alive else "no"),
                f"{st.processed:.0f}",
                f"{self._rate(svc.spec.name, int(st.processed)):.0f}",
                f"{st.lag:.0f}",
                f"{st.dlq:.0f}",
                f"{st.retries:.0f}",
                "-" if st.latency_p99_s is None else f"{st.latency_p99_s:.2f}s",
            )
        elapsed = time.monotonic() - started
        header = (
            f"running {elapsed:.0f}s"
            + (f" of {self.duration:g}s" if self.duration else " (Ctrl-C to stop)")
            + f"   simulator: {sum(ledger.operations.values())} transactions"
            + f"   relay pid {status.get('pid', '-')}"
        )
        return Group(header, table, services) if self.services else Group(header, table)

    def _drain(self, seeded: dict[str, int], ledger: Ledger) -> list[FlowCheck]:
        assert self.monitor is not None
        deadline = time.monotonic() + _DRAIN_TIMEOUT_S
        while True:
            checks = flow_checks(seeded, ledger, self.monitor.snapshot())
            if all(ch.ok for ch in checks) or time.monotonic() > deadline:
                return checks
            time.sleep(0.5)

    def _print_checks(self, checks: list[FlowCheck]) -> None:
        table = Table(title="every committed change reached the broker")
        for col in ("topic", "op", "expected", "in broker", ""):
            table.add_column(col)
        for ch in checks:
            table.add_row(
                ch.topic,
                ch.op,
                str(ch.expected),
                str(ch.actual),
                "[green]ok[/]" if ch.ok else "[red]MISMATCH[/]",
            )
        self.console.print(table)

    def _teardown(self) -> None:
        with self.console.status(
            "stopping: simulator, services, relay, AWS emulator, PostgreSQL, broker"
        ):
            if self.simulator is not None:
                self.simulator.stop()
                try:
                    self.simulator.close()
                except Exception as exc:
                    self.console.print(f"[yellow]simulator close: {exc!r}[/]")
            if self.monitor is not None:
                self.monitor.stop()
            for svc in self.services:  # SIGTERM once: each flushes and commits before exiting
                svc.request_stop()
            for svc in self.services:
                rc = svc.wait_stopped()
                if rc not in (0, None):
                    self.console.print(f"[yellow]{svc.spec.name} exited with {rc}[/]")
            self.stack.stop()
        self.console.print("stopped; no process left running")


def dev_up(work_dir: Path, rate: float, duration: float, seed: int | None = None) -> int:
    return DevUp(work_dir, rate, duration, seed).run()
