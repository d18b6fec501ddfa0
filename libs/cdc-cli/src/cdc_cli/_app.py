"""Typer application of the ``cdc`` command; each sub-command lives in its own module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from consumer_runtime import configure_logging

from cdc_cli import _dashboard, _dlq, _offsets, _status, _verify

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Operate the CDC consumer platform."
)
dev = typer.Typer(no_args_is_help=True, help="Local development on the embedded stack.")
app.add_typer(dev, name="dev")
_verify.register(dev)
_dashboard.register(dev)
_status.register(app)
_offsets.register(app)
_dlq.register(app)


@dev.command("up")
def dev_up(
    duration: Annotated[float, typer.Option(help="seconds to run; 0 = until Ctrl-C")] = 0,
    rate: Annotated[float, typer.Option(help="source transactions per second")] = 100,
    seed: Annotated[int | None, typer.Option(help="simulator seed (printed; replayable)")] = None,
    work_dir: Annotated[Path, typer.Option(help="data and logs of this run")] = Path(".devstack"),
    verify_timeout: Annotated[
        float,
        typer.Option(help="seconds a bounded run's read models get to equal the source"),
    ] = 180,
) -> None:
    """Start the embedded stack, the real Debezium connector and the simulator, with a live view."""
    from devstack import dev_up as run

    if rate <= 0:
        raise typer.BadParameter("--rate must be positive")
    if verify_timeout <= 0:
        raise typer.BadParameter("--verify-timeout must be positive")
    import shutil
    import time

    run_dir = work_dir / time.strftime("run-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    latest = work_dir / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink() if latest.is_symlink() else shutil.rmtree(latest)
    latest.symlink_to(run_dir.name)
    raise typer.Exit(run(run_dir.resolve(), rate, duration, seed, verify_timeout_s=verify_timeout))


def load_plugins(target: typer.Typer) -> list[str]:
    """Add the commands of every installed service; returns the services that added some.

    A service's descriptor (``cdc.services`` entry point) names a ``register(app: typer.Typer)
    -> None`` function as its ``commands`` (e.g. the event store's ``history`` and ``state``).
    The CLI never imports a service by name, so the rule "libraries never import services"
    holds and a deployment that installs only some services gets only their commands.
    """
    from cdc_cli._catalogue import catalogue

    loaded = []
    for name, descriptor in catalogue().items():
        register = descriptor.load_commands()
        if register is not None:
            register(target)
            loaded.append(name)
    return loaded


def main() -> None:
    # What the libraries a command calls log goes to stderr, warnings and worse only: stdout
    # is the command's output (``--json`` documents, tables), never interleaved with logs.
    configure_logging("WARNING", "console")
    load_plugins(app)
    app()


from cdc_cli import _chaos  # noqa: E402, F401  (adds `cdc dev chaos` and `cdc dev inject-bad`)
