"""Verification against ground truth: every read model compared with the source database.

``cdc dev verify`` and the end of a bounded ``make up`` call :func:`verify`. It does not know how
any service stores its read model: each service's descriptor (``cdc.services`` entry point,
``consumer_runtime.services()``) names its *verifier* (``verifier = "package.module:function"``),
a function ``(VerifyContext) -> list[Check]`` that reads its own sink and compares it with
:mod:`devstack.truth`. So the rule "libraries never import services" holds, and a checkout with
only some services installed verifies only those.

The stack a run started is described by a :class:`StackInfo`, saved as ``stack.json`` in the
run's directory, so ``cdc dev verify`` (and the other CLI commands) can find a running stack
from another terminal.

Read models converge asynchronously, so :func:`verify` re-runs the checks until all pass or a
deadline passes, and reports how long convergence took. A verifier that raises is reported as
a failing check with the error: verification itself never crashes on a broken sink.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg2
import psycopg2.extensions
from rich.table import Table

from devstack import truth

STACK_FILE = "stack.json"
# The built-in check that every consumer group has caught up (listed first in the table).
LAG = "consumer groups"
#: Suffix of a lag check's name after the group's (``<group> caught up``).
CAUGHT_UP = " caught up"


@dataclass(frozen=True)
class StackInfo:
    """Where a running stack's pieces are: what every CLI command and verifier needs."""

    bootstrap: str
    source_dsn: str
    aws_endpoint_url: str
    aws_env: dict[str, str] = field(default_factory=dict)
    # service name -> SQLAlchemy URL of its own database (sink-managed services only)
    databases: dict[str, str] = field(default_factory=dict)
    # service name -> consumer group id
    groups: dict[str, str] = field(default_factory=dict)
    # service name -> the service-specific environment it was started with (bucket, table, ...)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # The simulator's log of acknowledged user events (the truth for user statistics).
    activity_log: str | None = None
    work_dir: str | None = None
    # The read API of `make up` (when installed): its base URL, its OpenAPI docs, the dashboard
    # with the run's read key in the fragment, and that key (`X-API-Key`).
    api_url: str | None = None
    api_docs_url: str | None = None
    dashboard_url: str | None = None
    api_key: str | None = None

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> StackInfo:
        try:
            data = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no stack description at {path}: start the stack with `make up` "
                "(it writes one per run) or pass the right --work-dir"
            ) from None
        return cls(**data)

    def env_of(self, service: str) -> dict[str, str]:
        return dict(self.service_env.get(service, {}))


@dataclass(frozen=True)
class Check:
    """One comparison of a read model with the truth.

    ``expected`` and ``actual`` are sizes (rows, keys, objects) so the table shows the scale of
    what was compared; ``detail`` names the first differences when it fails.
    """

    service: str
    name: str
    ok: bool
    expected: int
    actual: int
    detail: str = ""
    #: Keys the truth has and the read model lacks (lost), keys only the read model has
    #: (doubled or invented), keys whose values differ; filled by ``diff_maps``.
    missing: int = 0
    extra: int = 0
    changed: int = 0


@dataclass
class VerifyReport:
    checks: list[Check]
    elapsed_s: float
    attempts: int

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "elapsed_s": round(self.elapsed_s, 2),
            "attempts": self.attempts,
            "checks": [asdict(c) for c in self.checks],
        }


@dataclass
class VerifyContext:
    """What a verifier gets: the stack's description and ground-truth helpers."""

    info: StackInfo

    @contextlib.contextmanager
    def source(self) -> Iterator[psycopg2.extensions.connection]:
        """A read-only connection to the source database, closed afterwards."""
        conn = psycopg2.connect(self.info.source_dsn)
        try:
            conn.set_session(readonly=True, autocommit=True)
            yield conn
        finally:
            conn.close()

    def activity_events(self) -> list[dict[str, Any]]:
        """The user events the broker acknowledged (the simulator's log)."""
        if not self.info.activity_log:
            return []
        return truth.read_activity_log(Path(self.info.activity_log))


Verifier = Callable[[VerifyContext], list[Check]]


def lag_checks(ctx: VerifyContext) -> list[Check]:
    """Per group, records not yet consumed: the exact end of every partition the group has an
    offset for, minus its committed offset (the read models are compared once this is zero).

    Exact ends (the last record read back) rather than watermarks, because the embedded broker's
    watermark can trail the last batch; on Kafka both agree.
    """
    from consumer_runtime import KafkaAdmin

    out: list[Check] = []
    with KafkaAdmin({"bootstrap.servers": ctx.info.bootstrap}, timeout_s=10.0) as admin:
        for group in sorted(ctx.info.groups.values()):
            committed = admin.committed_offsets(group)
            ends = admin.end_offsets(list(committed), exact=True) if committed else {}
            behind = {tp: ends[tp] - off for tp, off in committed.items() if ends[tp] > off}
            lag = sum(behind.values())
            detail = ", ".join(f"{tp.topic}[{tp.partition}] {n}" for tp, n in behind.items())
            out.append(
                Check(
                    LAG,
                    f"{group}{CAUGHT_UP}",
                    lag == 0 and bool(committed),
                    0,
                    lag,
                    detail or ("" if committed else "no committed offsets yet"),
                )
            )
    return out


def load_verifiers() -> dict[str, Verifier]:
    """The installed services' verifiers, by service name (those whose descriptor names one)."""
    from consumer_runtime import services

    found = {name: d.load_verifier() for name, d in services().items()}
    return {name: verifier for name, verifier in found.items() if verifier is not None}


def diff_maps(
    service: str,
    name: str,
    expected: dict[Any, Any],
    actual: dict[Any, Any],
    *,
    show: int = 3,
) -> Check:
    """Compare two keyed maps exactly; the detail names the first few differing keys."""
    keys = set(expected) | set(actual)
    bad = sorted((k for k in keys if expected.get(k) != actual.get(k)), key=str)
    detail = ""
    if bad:
        shown = "; ".join(
            f"{k}: expected {expected.get(k)!r}, got {actual.get(k)!r}" for k in bad[:show]
        )
        detail = f"{len(bad)} differ: {shown}"
    missing = sum(1 for k in bad if k not in actual)
    extra = sum(1 for k in bad if k not in expected)
    return Check(
        service,
        name,
        not bad,
        len(expected),
        len(actual),
        detail,
        missing=missing,
        extra=extra,
        changed=len(bad) - missing - extra,
    )


def _run_one(service: str, verifier: Verifier | None, ctx: VerifyContext) -> list[Check]:
    if verifier is None:
        return [Check(service, "verifier installed", False, 1, 0, "no verifier")]
    try:
        return verifier(ctx)
    except Exception as exc:  # a sink that cannot be read is a failed check, not a crash
        detail = f"{type(exc).__name__}: {exc}"
        return [Check(service, "read model readable", False, 1, 0, detail)]


def run_checks(
    info: StackInfo,
    verifiers: dict[str, Verifier] | None = None,
    services: Sequence[str] | None = None,
) -> dict[str, list[Check]]:
    """One pass of the verifiers of ``services`` (default: all this stack runs), in parallel:
    each mostly waits on its own store."""
    verifiers = {LAG: lag_checks, **(load_verifiers() if verifiers is None else verifiers)}
    wanted = sorted(services) if services is not None else [LAG, *sorted(info.groups)]
    ctx = VerifyContext(info)
    with ThreadPoolExecutor(max_workers=max(1, len(wanted)), thread_name_prefix="verify") as pool:
        futures = {s: pool.submit(_run_one, s, verifiers.get(s), ctx) for s in wanted}
        return {s: f.result() for s, f in futures.items()}


def verify(
    info: StackInfo,
    *,
    timeout_s: float = 120.0,
    interval_s: float = 2.0,
    services: Sequence[str] | None = None,
    verifiers: dict[str, Verifier] | None = None,
    on_attempt: Callable[[int, list[Check]], None] | None = None,
    gate_on_lag: bool = True,
) -> VerifyReport:
    """Re-run the checks until every one passes or ``timeout_s`` elapses.

    The services are still consuming when this starts (the tail of the run, retries after an
    outage), so a failure is final only at the deadline. With ``gate_on_lag`` (the default), a
    service's read model is compared only once its consumer group has caught up: comparing
    earlier cannot pass, and a full scan of a store on every pass takes capacity from the
    service that is still writing to it (the AWS emulator serves one request at a time). When
    only some ``services`` are asked for, the lag of their groups is checked and reported too.
    A service whose checks all passed is not checked again: once the stream is at rest, a read
    model equal to the source stays equal. ``elapsed_s`` is the time to converge.
    """
    verifiers = load_verifiers() if verifiers is None else verifiers
    pending = list(services) if services is not None else [LAG, *sorted(info.groups)]
    models = [s for s in pending if s != LAG]
    if gate_on_lag and models and LAG not in pending:
        pending.insert(0, LAG)  # the lag of the asked services' groups, reported with them
    gated = gate_on_lag and LAG in pending
    groups = {info.groups[s] for s in models if s in info.groups}
    results: dict[str, list[Check]] = {}
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        to_run = pending
        if gated:
            if LAG in pending:
                lag = run_checks(info, verifiers, [LAG])[LAG]
                if services is not None and models:
                    lag = [c for c in lag if c.name.removesuffix(CAUGHT_UP) in groups]
                results[LAG] = lag
            caught = caught_up_groups(results.get(LAG, []))
            to_run = []
            for s in pending:
                if s == LAG:
                    continue
                group = info.groups.get(s)
                if group is None or group in caught:
                    to_run.append(s)
                else:
                    results[s] = [waiting_check(s, group)]
        if to_run:
            results.update(run_checks(info, verifiers, to_run))
        checks = [c for service in results for c in results[service]]
        if on_attempt is not None:
            on_attempt(attempts, checks)
        pending = [s for s in pending if not all(c.ok for c in results[s]) or not results[s]]
        elapsed = time.monotonic() - started
        if not pending or elapsed >= timeout_s:
            return VerifyReport(checks, elapsed, attempts)
        time.sleep(interval_s)


def caught_up_groups(lag: Sequence[Check]) -> set[str]:
    """The groups whose lag check passed."""
    return {c.name.removesuffix(CAUGHT_UP) for c in lag if c.ok and c.name.endswith(CAUGHT_UP)}


def waiting_check(service: str, group: str) -> Check:
    """Stands for a service's checks while its group still has records to consume."""
    return Check(
        service,
        "read model compared",
        False,
        1,
        0,
        f"not yet: consumer group {group} has records left to consume (see the lag checks)",
    )


def report_table(report: VerifyReport) -> Table:
    verdict = "[green]PASS[/]" if report.ok else "[red]FAIL[/]"
    table = Table(
        title=(
            f"verification against the source database: {verdict} "
            f"({report.elapsed_s:.1f}s, {report.attempts} pass(es))"
        )
    )
    for col in ("service", "check", "expected", "actual", "", "detail"):
        table.add_column(col, justify="right" if col in ("expected", "actual") else "left")
    for c in report.checks:
        table.add_row(
            c.service,
            c.name,
            str(c.expected),
            str(c.actual),
            "[green]ok[/]" if c.ok else "[red]FAIL[/]",
            c.detail[:300],
        )
    return table
