"""``cdc dev chaos`` (faults while the pipeline runs, then verification) and ``cdc dev
inject-bad`` (malformed records into a running stack's topics).

The commands add themselves to the ``dev`` group when ``cdc_cli._app`` imports this module (at
its end, once ``dev`` exists). Only typer and rich are imported here: ``cdc --help`` stays fast.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cdc_cli._app import dev

if TYPE_CHECKING:
    from devstack.chaos import ChaosResult, FaultRecord


def _run_dir(work_dir: Path, prefix: str) -> Path:
    """A fresh folder for this run, with ``latest`` pointing at it (as ``cdc dev up`` does), so
    the other commands find the running stack from another terminal."""
    run_dir = work_dir / time.strftime(f"{prefix}-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    latest = work_dir / "latest"
    if latest.is_symlink():
        latest.unlink()
    elif latest.exists():
        shutil.rmtree(latest)
    latest.symlink_to(run_dir.name)
    return run_dir.resolve()


@dev.command("chaos")
def dev_chaos(
    duration: Annotated[float, typer.Option(help="seconds of fault schedule")] = 300,
    rate: Annotated[float, typer.Option(help="source transactions per second")] = 200,
    seed: Annotated[
        int | None, typer.Option(help="seed of the schedule and the workload (printed; replay)")
    ] = None,
    kills: Annotated[int, typer.Option(help="service processes SIGKILLed and restarted")] = 3,
    overlap: Annotated[
        bool,
        typer.Option(
            help="also faults that overlap (a rebalance during an outage, a kill mid-retry, a "
            "zombie, AWS throttling answers, clocks far ahead and behind) and records a store "
            "refuses"
        ),
    ] = True,
    resnapshot: Annotated[
        bool,
        typer.Option(
            help="with --overlap, a relay that lost its offsets and runs the snapshot again "
            "while changes go on"
        ),
    ] = True,
    verify_timeout: Annotated[
        float, typer.Option(help="seconds the read models get to converge")
    ] = 240,
    work_dir: Annotated[Path, typer.Option(help="data and logs of this run")] = Path(".devstack"),
    json_output: Annotated[
        bool, typer.Option("--json", help="print the result as JSON (the log goes to stderr)")
    ] = False,
) -> None:
    """Run the pipeline under a seeded fault schedule, then verify every read model.

    Service processes are SIGKILLed and restarted, the Debezium relay killed and restarted, the
    broker and the AWS emulator paused, the sink PostgreSQL stopped, a replica added and
    removed. With --overlap (the default) also faults that overlap: a rebalance while a store is
    down, a kill while a batch waits out a failure, a zombie (SIGSTOP past the session timeout,
    then SIGCONT), AWS throttling answers, clocks that lie (user events, order and product
    times and the source's commit time stamped 2099 or 1970 and year 1: the statistics' as-of
    and the lake's lateness must not freeze); and all along, records that parse but every
    store refuses (they must reach each consumer's dead-letter topic), and a relay that lost its
    offsets and runs its snapshot again (--no-resnapshot leaves it out). Exit 1 unless every
    read model equals the source database, every refused record is dead-lettered, no clock
    froze anything and no service exited on its own.
    """
    import random

    from devstack.chaos import ChaosDriver, ChaosOptions, Phase, run_chaos

    if rate <= 0 or duration <= 0 or kills < 0:
        raise typer.BadParameter("--rate and --duration must be positive, --kills >= 0")
    console = Console(stderr=json_output)
    seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    console.print(
        f"[bold]chaos seed {seed}[/]  (replay: cdc dev chaos --seed {seed} "
        f"--duration {duration:g} --rate {rate:g} --kills {kills}"
        f"{'' if overlap else ' --no-overlap'}{'' if resnapshot else ' --no-resnapshot'})"
    )
    options = ChaosOptions(
        duration_s=duration,
        rate=rate,
        seed=seed,
        service_kills=kills,
        overlap=overlap,
        resnapshot=resnapshot,
        verify_timeout_s=verify_timeout,
    )
    run_dir = _run_dir(work_dir, "chaos")
    console.print(f"work dir {run_dir}   rate {rate:g}/s   schedule {duration:g}s")
    started = time.monotonic()

    def on_phase(text: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:7.1f}s[/]  {text}")

    def on_fault(record: FaultRecord, phase: Phase) -> None:
        clock = record.wall_time[11:19]
        if record.kind == "unexpected_exit":
            console.print(
                f"[dim]{time.monotonic() - started:7.1f}s[/]  [red]unexpected exit[/] "
                f"{record.target}: {record.detail} (started again)"
            )
        elif phase == "begin":
            console.print(
                f"[dim]{time.monotonic() - started:7.1f}s[/]  [yellow]>> #{record.seq} "
                f"{record.kind}[/] {record.target} at {clock} UTC (+{record.at_s:.1f}s)"
            )
        else:
            verdict = "[green]done[/]" if record.error is None else f"[red]{record.error}[/]"
            console.print(
                f"[dim]{time.monotonic() - started:7.1f}s[/]  <<  #{record.seq} "
                f"{record.kind} {record.target} {verdict} in {record.duration_s:.1f}s: "
                f"{record.detail}"
            )

    drivers: list[ChaosDriver] = []
    try:
        result = run_chaos(
            run_dir, options, on_fault=on_fault, on_phase=on_phase, on_driver=drivers.append
        )
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; everything was stopped[/]")
        if drivers:
            console.print(faults_table(drivers[0].faults))
        raise typer.Exit(130) from None
    except Exception as exc:
        console.print(f"[red]chaos run failed: {type(exc).__name__}: {exc}[/]")
        if drivers:
            console.print(faults_table(drivers[0].faults))
        console.print(f"logs: {run_dir}")
        raise typer.Exit(1) from None

    from devstack.verify import report_table

    if json_output:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        console.print(faults_table(result.faults + result.unexpected_exits))
        console.print(events_table(result))
        if result.report is not None:
            console.print(report_table(result.report))
        converge = result.time_to_converge_s
        console.print(
            f"faults injected: {len(result.faults)}/{len(result.planned)} "
            f"({', '.join(f'{k} x{n}' for k, n in sorted(result.kinds_injected().items()))})   "
            f"simulated {result.simulated_s:.0f}s: {result.transactions} transactions, "
            f"{result.activity_events} user events   "
            f"time to converge: {'-' if converge is None else f'{converge:.1f}s'}"
        )
        console.print(outcome_table(result))
        for missing in result.refused_missing:
            console.print(f"[red]not dead-lettered[/]: {missing}")
        if result.clocks is not None:
            for problem in result.clocks.problems:
                console.print(f"[red]clocks[/]: {problem}")
            for note in result.clocks.observation.notes:
                console.print(f"[yellow]clocks[/]: {note}")
        for problem in result.problems:
            console.print(f"[yellow]{problem}[/]")
        console.print(
            "[green]PASS[/]: every read model equals the source database after the chaos"
            if result.ok
            else f"[red]FAIL[/] (replay with --seed {seed}; logs in {run_dir})"
        )
    raise typer.Exit(0 if result.ok else 1)


def faults_table(faults: Sequence[FaultRecord]) -> Table:
    table = Table(title="faults")
    for col in ("#", "at", "wall time (UTC)", "kind", "target", "took", "", "detail"):
        table.add_column(col, justify="right" if col in ("#", "at", "took") else "left")
    for f in faults:
        status = (
            "[green]ok[/]"
            if f.done and f.error is None and f.kind != "unexpected_exit"
            else ("[red]exit[/]" if f.kind == "unexpected_exit" else f"[red]{f.error}[/]")
        )
        table.add_row(
            str(f.seq or ""),
            f"+{f.at_s:.1f}s",
            f.wall_time[11:23],
            f.kind,
            f.target,
            f"{f.duration_s:.1f}s",
            status,
            f.detail,
        )
    return table


def outcome_table(result: ChaosResult) -> Table:
    """The run in one table: faults, changes, lost, doubled, dead-lettered, lag, convergence,
    and whether a lying clock froze the statistics' as-of or the lake's lateness."""
    changes = sum(e.committed for e in result.events)
    differing = [c for c in (result.report.checks if result.report else []) if not c.ok]
    table = Table(title=f"outcome of seed {result.seed}")
    for col in (
        "faults",
        "changes",
        "lost",
        "doubled",
        "refused",
        "dead-lettered",
        "max lag",
        "converged in",
        "clocks",
    ):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(result.faults)),
        f"{changes:,}",
        str(sum(c.missing + c.changed for c in differing)),
        str(sum(c.extra for c in differing)),
        f"{len(result.refused)} ({len(result.refused_missing)} missing)",
        ", ".join(f"{k.split('-')[0]} {v}" for k, v in sorted(result.dead_lettered.items())),
        ", ".join(f"{k.split('-')[0]} {v:,.0f}" for k, v in sorted(result.max_lag.items())),
        "-" if result.time_to_converge_s is None else f"{result.time_to_converge_s:.0f}s",
        _clocks_cell(result),
    )
    return table


def _clocks_cell(result: ChaosResult) -> str:
    clocks = result.clocks
    if clocks is None:
        return "-"
    verdict = "[green]ok[/]" if clocks.ok else "[red]FAIL[/]"
    return f"{verdict} ({clocks.summary()})"


def events_table(result: ChaosResult) -> Table:
    from devstack.chaos import flow_check_ok

    table = Table(title="events per topic (committed in the source / sent, and in the broker)")
    for col in ("topic", "committed", "in broker", "re-emitted", ""):
        table.add_column(col, justify="left" if col == "topic" else "right")
    bad_topics = {c.topic for c in result.flow if not flow_check_ok(c)}
    for e in result.events:
        table.add_row(
            e.topic,
            str(e.committed),
            str(e.in_broker),
            str(e.re_emitted),
            "[red]MISSING[/]" if e.topic in bad_topics else "[green]ok[/]",
        )
    return table


@dev.command("inject-bad")
def dev_inject_bad(
    count_per_kind: Annotated[int, typer.Option(min=1, help="records of each kind per topic")] = 1,
    kind: Annotated[
        list[str] | None, typer.Option(help="only these kinds (repeatable); default: all")
    ] = None,
    work_dir: Annotated[
        Path,
        typer.Option(
            help="directory of `make up` runs (its `latest/stack.json` describes the running stack)"
        ),
    ] = Path(".devstack"),
    bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (default: from the stack description)"),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Produce malformed records into every CDC topic and user-events of a running stack.

    Kinds: not JSON, bad UTF-8, unknown op, bad decimal, oversized, missing field, wrong type;
    and, only when asked (--kind store_refused), records that parse but every store refuses
    (customers and user-events only). Every consuming service must dead-letter each one (with
    its error code) and keep flowing.
    """
    from devstack.badinput import KINDS, STORE_REFUSED, consumers_of, inject_bad_records
    from devstack.verify import STACK_FILE, StackInfo

    console = Console()
    kinds = tuple(kind) if kind else KINDS
    known = (*KINDS, STORE_REFUSED)
    unknown = sorted(set(kinds) - set(known))
    if unknown:
        raise typer.BadParameter(f"unknown kind(s) {unknown}; known: {', '.join(known)}")
    if bootstrap is None:
        path = work_dir / "latest" / STACK_FILE
        if not path.exists():
            path = work_dir / STACK_FILE
        try:
            bootstrap = StackInfo.load(path).bootstrap
        except FileNotFoundError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    try:
        injection = inject_bad_records(bootstrap, kinds=kinds, count_per_kind=count_per_kind)
    except Exception as exc:  # the broker unreachable, a topic missing: say so, exit 1
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    if json_output:
        sys.stdout.write(json.dumps(injection.to_dict(), indent=2) + "\n")
        return
    table = Table(title=f"injected into {bootstrap}")
    for col in ("topic", "partition", "offset", "kind", "expected code", "bytes", "key"):
        table.add_column(
            col, justify="right" if col in ("partition", "offset", "bytes") else "left"
        )
    for r in injection.records:
        table.add_row(
            r.topic,
            str(r.partition),
            str(r.offset),
            r.kind,
            r.expected_code,
            str(r.size),
            r.key.decode(errors="replace"),
        )
    console.print(table)
    for topic, skipped_kind, reason in injection.skipped:
        console.print(f"[yellow]skipped[/] {skipped_kind} on {topic}: {reason}")
    readers = sorted({s for r in injection.records for s in consumers_of(r.topic)})
    console.print(
        f"{len(injection.records)} records; each must appear once in the dead-letter topic of "
        f"every service reading its topic ({', '.join(f'{s}.dlq' for s in readers)}), with its "
        "code in the __cdc.errors.code header, and the services must keep flowing."
    )
