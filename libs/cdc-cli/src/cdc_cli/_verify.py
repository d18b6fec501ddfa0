"""``cdc dev verify``: compare every read model of a running stack with the source database."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console

if TYPE_CHECKING:
    from devstack.verify import Check, StackInfo

STACK_HELP = "directory of `make up` runs (its `latest/stack.json` describes the running stack)"


def load_stack(work_dir: Path) -> tuple[Path, StackInfo]:
    """The running stack's description under ``work_dir`` (its ``latest`` run, else the
    directory itself) and where it was read; exit 2 with the reason when there is none."""
    from devstack.verify import STACK_FILE, StackInfo

    path = work_dir / "latest" / STACK_FILE
    if not path.exists():
        path = work_dir / STACK_FILE
    try:
        return path, StackInfo.load(path)
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def register(dev: typer.Typer) -> None:
    @dev.command("verify")
    def verify_command(
        work_dir: Annotated[Path, typer.Option(help=STACK_HELP)] = Path(".devstack"),
        timeout: Annotated[
            float, typer.Option(help="seconds to wait for the read models to converge")
        ] = 120.0,
        service: Annotated[
            list[str] | None, typer.Option("--service", "-s", help="only these services")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    ) -> None:
        """Wait until every read model equals the source database (or the timeout), then print
        a table of checks; exit 1 if any fails."""
        from devstack.verify import report_table, verify

        _, info = load_stack(work_dir)
        console = Console(stderr=as_json)
        if service:
            unknown = sorted(set(service) - set(info.groups))
            if unknown:
                raise typer.BadParameter(
                    f"not running in this stack: {', '.join(unknown)} "
                    f"(running: {', '.join(sorted(info.groups))})",
                    param_hint="--service",
                )

        def progress(attempt: int, checks: list[Check]) -> None:
            failing = sum(1 for c in checks if not c.ok)
            console.print(f"pass {attempt}: {failing} check(s) not equal yet", style="dim")

        report = verify(info, timeout_s=timeout, services=service, on_attempt=progress)
        if as_json:
            sys.stdout.write(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
            sys.stdout.write("\n")
        else:
            console.print(report_table(report))
        raise typer.Exit(0 if report.ok else 1)
