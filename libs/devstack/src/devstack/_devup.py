"""``make up`` / ``cdc dev up``: the embedded stack with the simulator and a live view.

Order of start: broker, PostgreSQL (source, sink), AWS emulator, seed rows, the Debezium relay
(progress bar while its snapshot runs), then the simulator. Order of stop (Ctrl-C, SIGTERM or
the end of ``--duration``): simulator, then drain (wait until every committed change reached the
broker), services (final flush), relay, then the servers. A bounded run ends with two checks and
exits non-zero if either fails: every change the simulator committed arrived in its topic as the
right Debezium op, and every read model equals the source database (:mod:`devstack.verify`).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devstack._peaks import Peaks
from devstack._pipeline import FlowCheck, Pipeline, expected_flow, flow_checks
from devstack._services import (
    DATA_LAKE_BUCKET,
    INVENTORY_TABLE,
    SEARCH_TABLE,
)
from devstack._shop import SHOP_TABLES
from devstack._stack import TOPIC_PREFIX
from devstack.simulator import USER_EVENTS_TOPIC
from devstack.verify import STACK_FILE, VerifyReport, report_table

__all__ = ["DevUp", "FlowCheck", "dev_up", "expected_flow", "flow_checks"]

_REFRESH_PER_S = 2
# Rates shown are averaged over this many seconds, so they do not flicker with batching.
_RATE_WINDOW_S = 5.0
# After the drain, the services need a moment to consume the tail and flush their last windows;
# the search indexer, writing through the AWS emulator, may also have a backlog to work off
# (at 200 transactions/s for 120 s it needs about 100 s here).
VERIFY_TIMEOUT_S = 180.0


class DevUp:
    def __init__(
        self,
        work_dir: Path,
        rate: float,
        duration: float,
        seed: int | None,
        console: Console | None = None,
        verify: bool = True,
        verify_timeout_s: float = VERIFY_TIMEOUT_S,
    ) -> None:
        self.work_dir = work_dir
        self.rate = rate
        self.duration = duration
        self.console = console or Console()
        self.pipeline = Pipeline(work_dir, rate=rate, seed=seed, query_api=True)
        self.seed = self.pipeline.seed
        self.verify_at_end = verify
        self.verify_timeout_s = verify_timeout_s
        self._stop = threading.Event()
        self._rates: dict[str, deque[tuple[float, int]]] = {}
        self.peaks = Peaks()

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
        p = self.pipeline
        c.rule("[bold]CDC platform: embedded stack")
        c.print(
            f"work dir {self.work_dir}   seed {self.seed}   rate {self.rate:g}/s   "
            f"duration {'until Ctrl-C' if not self.duration else f'{self.duration:g}s'}"
        )
        with c.status("starting broker, PostgreSQL (source + sink), AWS emulator..."):
            p.start_servers()
        p.start_relay()
        self._snapshot_progress()
        if self._stop.is_set():
            return 130
        if p.missing:
            c.print(f"[yellow]not installed, not started:[/] {', '.join(p.missing)}")
        p.start_services()
        if p.query_api is None:
            c.print("[yellow]query-api not installed: no read API, no web dashboard[/]")
        self._print_endpoints()
        p.start_simulator()
        started = time.monotonic()
        interrupted = False
        relay = p.stack.relay
        assert relay is not None
        try:
            with Live(self._view(started), console=c, refresh_per_second=_REFRESH_PER_S) as live:
                while not self._stop.wait(1 / _REFRESH_PER_S):
                    live.update(self._view(started))
                    if self.duration and time.monotonic() - started >= self.duration:
                        break
                    if not relay.process.running:
                        c.print(f"[red]the Debezium relay died:[/]\n{relay.process.log_tail()}")
                        return 1
                    if p.simulator_error is not None:
                        break
        except KeyboardInterrupt:
            interrupted = True
        ledger = p.stop_simulator()
        self._print_peaks()
        c.print(
            f"simulator stopped after {time.monotonic() - started:.0f}s: "
            f"{sum(ledger.operations.values())} transactions, "
            f"{ledger.activity_events} user events; draining..."
        )
        checks = p.drain(ledger)
        self._print_checks(checks)
        ok = all(ch.ok for ch in checks)
        if interrupted:
            return 130
        if self.verify_at_end and p.services:
            report = self._verify()
            ok = ok and report.ok
        return 0 if ok else 1

    def _verify(self) -> VerifyReport:
        with self.console.status(
            "verifying every read model against the source database "
            f"(until equal, at most {self.verify_timeout_s:.0f}s)..."
        ):
            report = self.pipeline.verify(self.verify_timeout_s)
        self.console.print(report_table(report))
        return report

    def _snapshot_progress(self) -> None:
        p = self.pipeline
        progress = Progress(
            TextColumn("[bold]Debezium snapshot"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} rows"),
            TimeElapsedColumn(),
            console=self.console,
        )
        with progress:
            done, total = p.snapshot_progress()
            task = progress.add_task("snapshot", total=total)
            while not self._stop.is_set():
                done, total = p.snapshot_progress()
                progress.update(task, completed=done)
                if p.snapshot_done():
                    break
                time.sleep(0.2)
        self.console.print("[green]Debezium is streaming[/] (snapshot complete)")

    def _print_endpoints(self) -> None:
        s = self.pipeline.stack
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_row("Kafka bootstrap", s.broker.bootstrap)
        table.add_row("source PostgreSQL", s.source.url("shop"))
        info = self.pipeline.info()
        for service, url in sorted(info.databases.items()):
            table.add_row(f"{service} DB", url)
        table.add_row("AWS endpoint", s.aws.endpoint_url)
        table.add_row("Iceberg tables", f"s3://{DATA_LAKE_BUCKET}/warehouse/ (cdc lake tables)")
        table.add_row("S3 data lake (Parquet)", f"s3://{DATA_LAKE_BUCKET}/reports/")
        table.add_row("DynamoDB tables", f"{SEARCH_TABLE}, {INVENTORY_TABLE}")
        for svc in self.pipeline.services:
            table.add_row(f"{svc.name} metrics", svc.metrics_url)
        api = self.pipeline.query_api
        if api is not None:
            table.add_row("query API", f"{api.url}/v1 (X-API-Key: {api.key})")
            table.add_row("API docs", api.docs_url)
            table.add_row("dashboard", f"[bold]{api.dashboard_url}[/]")
        table.add_row("logs", str(self.work_dir))
        table.add_row("stack description", str(self.work_dir / STACK_FILE))
        self.console.print(Panel(table, title="where to look", expand=False))
        examples = Table(show_header=False, box=None, padding=(0, 2))
        if api is not None:
            examples.add_row(
                f'[cyan]curl -H "X-API-Key: {api.key}" {api.url}/v1/pipeline[/]',
                "pipeline health (JSON)",
            )
        for cmd, what in (
            ("cdc dev verify", "compare every read model with the source database"),
            ("cdc status", "consumer groups: members, partitions, offsets, lag"),
            ('cdc search "espresso cup" --max-price 30', "product search"),
            ("cdc stats customer 1", "statistics of one customer"),
            ("cdc history orders 1", "a row's full history from the event store"),
            ("cdc dlq list", "dead-lettered records"),
            (
                'cdc lake query "SELECT * FROM sales ORDER BY window_start DESC LIMIT 5"',
                "SQL over the lake's Iceberg tables (time travel: --as-of)",
            ),
        ):
            examples.add_row(f"[cyan]{cmd}[/]", what)
        self.console.print(
            Panel(examples, title="try, from another terminal (.venv/bin/cdc)", expand=False)
        )

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
        p = self.pipeline
        assert p.monitor is not None and p.simulator is not None
        relay = p.stack.relay
        status = relay.status() if relay else {}
        produced = status.get("produced", {})
        seen = p.monitor.snapshot()
        ledger = p.simulator.ledger
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
                str(ledger.total(t) + p.seeded.get(t, 0)),
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
        lag = Table(title="lag per topic (records)", expand=False)
        lag.add_column("topic")
        statuses = [(svc, svc.status()) for svc in p.services]
        for svc, _ in statuses:
            lag.add_column(svc.name, justify="right")
        for topic in p.topics:
            lag.add_row(
                topic.removeprefix(f"{TOPIC_PREFIX}.public."),
                *(
                    "" if topic not in st.lag_by_topic else f"{st.lag_by_topic[topic]:.0f}"
                    for _, st in statuses
                ),
            )
        for svc, st in statuses:
            self.peaks.track(svc, st, time.monotonic() - started)
            alive = svc.process.running
            services.add_row(
                svc.name,
                "[green]yes[/]" if st.ready else ("[red]exited[/]" if not alive else "no"),
                f"{st.processed:.0f}",
                f"{self._rate(svc.name, int(st.processed)):.0f}",
                f"{st.lag:.0f}" if st.lag_reported else "-",
                f"{st.dlq:.0f}",
                f"{st.retries:.0f}",
                "-" if st.latency_p99_s is None else f"{st.latency_p99_s:.2f}s",
            )
        elapsed = time.monotonic() - started
        sim_rate = self._rate("simulator", sum(ledger.operations.values()))
        header = (
            f"running {elapsed:.0f}s"
            + (f" of {self.duration:g}s" if self.duration else " (Ctrl-C to stop)")
            + f"   simulator: {sum(ledger.operations.values())} transactions ({sim_rate:.0f}/s)"
            + f"   relay pid {status.get('pid', '-')}"
        )
        return Group(header, table, services, lag) if p.services else Group(header, table)

    def _print_peaks(self) -> None:
        """While the simulator ran, from when each service caught up with the start: its
        largest lag and largest p99 of a refresh (the live view shows them now; this is
        "throughout"), and its p99 over that time; and its p99 over the whole run."""
        if self.pipeline.services:
            self.console.print(self.peaks.table(self.pipeline.services))

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
            "stopping: simulator, services (final flush), relay, AWS emulator, PostgreSQL, broker"
        ):
            problems = self.pipeline.close()
        for problem in problems:
            self.console.print(f"[yellow]{problem}[/]")
        self.console.print("stopped; no process left running")


def dev_up(
    work_dir: Path,
    rate: float,
    duration: float,
    seed: int | None = None,
    verify: bool = True,
    verify_timeout_s: float = VERIFY_TIMEOUT_S,
) -> int:
    return DevUp(
        work_dir, rate, duration, seed, verify=verify, verify_timeout_s=verify_timeout_s
    ).run()
