"""``cdc dev dashboard``: where the running stack's read API and its dashboard are.

``make up`` starts the read API with a read key generated for the run and records its addresses
in the stack description (``stack.json``); this command prints them (``--json`` for scripts),
so another terminal or a script can call the API without reading the start-up output.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from cdc_cli._verify import STACK_HELP, load_stack


def register(dev: typer.Typer) -> None:
    @dev.command("dashboard")
    def dashboard_command(
        work_dir: Annotated[Path, typer.Option(help=STACK_HELP)] = Path(".devstack"),
        as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    ) -> None:
        """Print the read API's URL, its docs, the dashboard's address (with the run's read
        key in its fragment) and the key; exit 2 when the stack runs no API."""
        path, info = load_stack(work_dir)
        if info.api_url is None:
            typer.echo(
                f"error: the stack described in {path} runs no read API: install the "
                "query-api package (`make venv`) and start the stack again with `make up`",
                err=True,
            )
            raise typer.Exit(2)
        found = {
            "api_url": info.api_url,
            "api_docs_url": info.api_docs_url,
            "dashboard_url": info.dashboard_url,
            "api_key": info.api_key,
        }
        if as_json:
            sys.stdout.write(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode() + "\n")
            return
        typer.echo(f"dashboard  {info.dashboard_url}")
        typer.echo(f"API        {info.api_url}/v1   (header X-API-Key: {info.api_key})")
        typer.echo(f"API docs   {info.api_docs_url}")
