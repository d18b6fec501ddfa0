"""Options shared by the operator commands (kept import-light: ``cdc --help`` loads this)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_STACK = Path(".devstack/latest/stack.json")

Bootstrap = Annotated[
    str | None,
    typer.Option(
        "--bootstrap",
        envvar="KAFKA_BOOTSTRAP_SERVERS",
        help="Kafka bootstrap servers (default: from the stack description, if any).",
        show_default=False,
    ),
]
Stack = Annotated[
    Path | None,
    typer.Option(
        "--stack",
        help=f"stack description written by `make up` (default: {DEFAULT_STACK}, if it exists)",
        show_default=False,
    ),
]
Timeout = Annotated[
    float, typer.Option("--timeout", min=0.5, help="seconds to wait for each Kafka request")
]
Json = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
