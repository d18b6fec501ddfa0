"""``cdc stats customer ID | product ID | user ID``: one entity's statistics from the read model.

Named by the service's descriptor (``service.SERVICE.commands``) (the CLI never imports
a service by name). The database comes from ``--database-url`` or ``DATABASE_URL``; ``--json``
prints the row as JSON for scripts.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import orjson
import typer
from read_models import ReadModelError
from rich.console import Console
from rich.table import Table

from stats_aggregator.errors import StatsAggregatorError

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        help="SQLAlchemy URL of the aggregator's database (the schema via options=-csearch_path).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print the row as JSON.")]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal | datetime | date):
        return str(_default(value))
    return str(value)


def _show(kind: str, key: int | str, database_url: str, as_json: bool) -> None:
    from stats_aggregator.store import StatsReader  # database client only when a command runs

    console = Console()
    reader = StatsReader(database_url)
    try:
        row = reader.get(kind, key)
    except (StatsAggregatorError, ReadModelError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        reader.close()
    if row is None:
        Console(stderr=True).print(f"no statistics for {kind} {key}")
        raise typer.Exit(1)
    row.pop("updated_at", None)
    if as_json:
        typer.echo(orjson.dumps(row, default=_default).decode())
        return
    table = Table(title=f"{kind} {key}", show_header=False)
    table.add_column("statistic", style="bold")
    table.add_column("value")
    for name, value in row.items():
        table.add_row(name, _text(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``stats`` command group to the operator CLI."""
    stats = typer.Typer(help="Live statistics kept by the stats aggregator.", no_args_is_help=True)

    @stats.command("customer")
    def customer(customer_id: int, database_url: DatabaseUrl, as_json: Json = False) -> None:
        """Orders, spend and first/last order of one customer."""
        _show("customer", customer_id, database_url, as_json)

    @stats.command("product")
    def product(product_id: int, database_url: DatabaseUrl, as_json: Json = False) -> None:
        """Stock, units sold, revenue and low-stock flag of one product."""
        _show("product", product_id, database_url, as_json)

    @stats.command("user")
    def user(user_id: str, database_url: DatabaseUrl, as_json: Json = False) -> None:
        """Activity, spend, engagement score and churn risk of one user."""
        _show("user", user_id, database_url, as_json)

    app.add_typer(stats, name="stats")
