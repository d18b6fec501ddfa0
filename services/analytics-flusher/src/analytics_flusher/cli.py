"""``cdc lake``: the analytics flusher's operator commands over its Iceberg tables, named by the
service's descriptor (``service.SERVICE.commands``; the CLI never imports a service by name).

    cdc lake tables
    cdc lake query "SELECT order_day, count(*), sum(total) FROM orders_current GROUP BY 1"
    cdc lake query "SELECT * FROM orders_changes WHERE order_id = 42" --as-of 2026-12-06T10:00:00Z
    cdc lake snapshots orders_changes --json

The catalog is where the service writes it: its settings (``FlusherSettings``: ``LAKE_CATALOG``,
``LAKE_CATALOG_URI``, ``LAKE_WAREHOUSE``, ``LAKE_NAMESPACE``, ``S3_BUCKET``,
``AWS_ENDPOINT_URL`` and the ``AWS_*`` credentials), read from the environment with a
placeholder for the Kafka servers they require and these commands never use, under the options
``--catalog-uri``, ``--warehouse`` and ``--namespace``. With no catalog URI in either (and the
SQL catalog), the analytics flusher's environment in the running dev stack's description
(``.devstack/latest/stack.json``, ``--stack``) is used, if it has one.

Every failure is one line on stderr and exit code 2. pyiceberg, pyarrow and DuckDB are imported
by ``store`` when a command runs, not when ``cdc`` starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from analytics_flusher._lake_text import (
    Format,
    parse_as_of,
    render_rows,
    snapshots_table,
    summary_line,
    tables_table,
    to_json,
)
from analytics_flusher._maintain_cli import add_commands as add_maintenance

if TYPE_CHECKING:
    from analytics_flusher.store._iceberg import CatalogConfig

__all__ = ["register_commands"]

SERVICE = "analytics-flusher"
DEFAULT_STACK = Path(".devstack/latest/stack.json")
EXIT_USAGE = 2
#: The service's variables that say where its lake is, as the dev stack records them.
_LAKE_VARIABLES = ("LAKE_CATALOG", "LAKE_CATALOG_URI", "LAKE_WAREHOUSE", "LAKE_NAMESPACE")
_NO_CATALOG = (
    "no Iceberg catalog: pass --catalog-uri or set LAKE_CATALOG_URI "
    "(postgresql+psycopg2://user:password@host:port/database)"
)

CatalogUri = Annotated[
    str | None,
    typer.Option(
        "--catalog-uri",
        help="SQL catalog database (default: LAKE_CATALOG_URI, else the running dev stack's)",
        show_default=False,
    ),
]
Warehouse = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        help="s3://bucket/prefix (default: LAKE_WAREHOUSE, else s3://<S3_BUCKET>/warehouse)",
        show_default=False,
    ),
]
Namespace = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        help="namespace (default: LAKE_NAMESPACE, else analytics)",
        show_default=False,
    ),
]
Stack = Annotated[
    Path | None,
    typer.Option(
        "--stack",
        help=f"dev stack description to take the catalog from (default: {DEFAULT_STACK}, "
        "when no catalog URI is given and it exists)",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


class LakeCliError(Exception):
    """A failure the operator can act on; printed as one line, exit code 2."""


def _fail(message: str) -> NoReturn:
    # soft_wrap: the message stays one line, however narrow the terminal.
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}"
    )
    raise typer.Exit(EXIT_USAGE)


# -- where the catalog is -------------------------------------------------------------------------


@dataclass(frozen=True)
class StackLake:
    """What the dev stack's description says about the flusher's lake: the service's
    environment and the stack's AWS emulator (its endpoint and credentials)."""

    env: dict[str, str]
    aws_env: dict[str, str]


def stack_lake(path: Path | None) -> StackLake | None:
    """The flusher's lake in the stack description at ``path`` (required to exist) or at the
    default (optional); None when the stack gives the flusher no catalog URI."""
    explicit = path is not None
    path = path if path is not None else DEFAULT_STACK
    try:
        data = orjson.loads(path.read_bytes())
        env = dict(data.get("service_env", {}).get(SERVICE, {}))
        aws_env = {**data.get("aws_env", {}), "AWS_ENDPOINT_URL": data["aws_endpoint_url"]}
    except FileNotFoundError:
        if explicit:
            raise LakeCliError(f"no stack description at {path}") from None
        return None
    except (OSError, orjson.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise LakeCliError(f"{path} is not a dev stack description ({exc})") from exc
    if not env.get("LAKE_CATALOG_URI"):
        if explicit:
            raise LakeCliError(f"{path}: the stack's {SERVICE} has no LAKE_CATALOG_URI")
        return None
    return StackLake({k: str(v) for k, v in env.items()}, {k: str(v) for k, v in aws_env.items()})


def wants_stack(catalog_uri: str | None, env: Mapping[str, str]) -> bool:
    """Whether to look for the dev stack's lake: no catalog URI given (option or environment)
    and the SQL catalog (a Glue catalog needs no URI)."""
    return (
        not catalog_uri
        and not env.get("LAKE_CATALOG_URI")
        and env.get("LAKE_CATALOG", "sql").lower() != "glue"
    )


def settings_overrides(options: Mapping[str, str | None], lake: StackLake | None) -> dict[str, str]:
    """The ``FlusherSettings`` fields to set over the environment: the options given, over the
    stack's lake variables and its emulator's endpoint (when the stack's lake is used)."""
    given = {field: value for field, value in options.items() if value is not None}
    if lake is None:
        return given
    from_stack = {
        name.lower(): lake.env[name]
        for name in (*_LAKE_VARIABLES, "S3_BUCKET")
        if lake.env.get(name)
    }
    from_stack["aws_endpoint_url"] = lake.aws_env["AWS_ENDPOINT_URL"]
    return {**from_stack, **given}


def catalog_config(
    catalog_uri: str | None, warehouse: str | None, namespace: str | None, stack: Path | None
) -> CatalogConfig:
    """The catalog these commands read (see the module docstring)."""
    from consumer_runtime import SettingsError

    from analytics_flusher.settings import FlusherSettings
    from analytics_flusher.store._iceberg import CatalogConfig

    env = os.environ
    lake = stack_lake(stack) if wants_stack(catalog_uri, env) else None
    options = {
        "lake_catalog_uri": catalog_uri,
        "lake_warehouse": warehouse,
        "lake_namespace": namespace,
    }
    try:
        # The Kafka servers are required by the service's settings, never used here.
        settings = FlusherSettings.load(
            kafka_bootstrap_servers="unused", **settings_overrides(options, lake)
        )
        config = settings.catalog_config()
        if config is None:
            raise LakeCliError(_NO_CATALOG)
        if lake is not None:  # the stack's emulator and its credentials
            config = CatalogConfig.from_env(
                config.uri,
                config.warehouse,
                namespace=config.namespace,
                kind=config.kind,
                env={**env, **lake.aws_env},
            )
    except (SettingsError, ValueError) as exc:
        raise LakeCliError(" ".join(str(exc).split())) from exc
    return config


def _catalog(config: CatalogConfig) -> Any:
    from analytics_flusher.store._iceberg import open_for_reading

    return open_for_reading(config)


# -- commands -------------------------------------------------------------------------------------


def query(
    sql: Annotated[
        str,
        typer.Argument(
            help="DuckDB SQL over the namespace's tables (each under its own name) and the "
            "views orders_current and order_items_current"
        ),
    ],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="read the lake as it was: a snapshot id, or an ISO-8601 time (UTC without "
            "an offset)",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Format, typer.Option("--format", help="how to print the rows")
    ] = Format.table,
    catalog_uri: CatalogUri = None,
    warehouse: Warehouse = None,
    namespace: Namespace = None,
    stack: Stack = None,
) -> None:
    """Run SQL over the lake's tables, now or as they were at a time or snapshot."""
    from analytics_flusher.errors import AnalyticsFlusherError
    from analytics_flusher.store._iceberg import lake_query

    try:
        when = parse_as_of(as_of)
        config = catalog_config(catalog_uri, warehouse, namespace, stack)
        columns, rows = lake_query(_catalog(config), config.namespace, sql, as_of=when)
    except (LakeCliError, AnalyticsFlusherError, ValueError) as exc:
        _fail(str(exc))
    rendered = render_rows(columns, rows, output)
    if isinstance(rendered, str):
        typer.echo(rendered, nl=not rendered.endswith("\n"))
        return
    console = Console()
    console.print(rendered)
    console.print(summary_line(len(rows), when), style="dim", highlight=False)


def snapshots(
    table: Annotated[
        str | None, typer.Argument(help="one table (default: every table)", show_default=False)
    ] = None,
    as_json: Json = False,
    catalog_uri: CatalogUri = None,
    warehouse: Warehouse = None,
    namespace: Namespace = None,
    stack: Stack = None,
) -> None:
    """List each table's snapshots, oldest first, with the Kafka positions they record."""
    from analytics_flusher.errors import AnalyticsFlusherError
    from analytics_flusher.store._iceberg import snapshots as read_snapshots

    try:
        config = catalog_config(catalog_uri, warehouse, namespace, stack)
        found = [s.to_dict() for s in read_snapshots(_catalog(config), config.namespace, table)]
    except (LakeCliError, AnalyticsFlusherError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(to_json(found))
    elif not found:
        Console().print(f"no snapshots in {config.namespace}" + (f".{table}" if table else ""))
    else:
        Console().print(snapshots_table(found))


def tables(
    as_json: Json = False,
    catalog_uri: CatalogUri = None,
    warehouse: Warehouse = None,
    namespace: Namespace = None,
    stack: Stack = None,
) -> None:
    """List the namespace's tables with their rows and current snapshot (from the metadata)."""
    from analytics_flusher.errors import AnalyticsFlusherError
    from analytics_flusher.store._iceberg import list_tables

    try:
        config = catalog_config(catalog_uri, warehouse, namespace, stack)
        found = [t.to_dict() for t in list_tables(_catalog(config), config.namespace)]
    except (LakeCliError, AnalyticsFlusherError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(to_json(found))
    elif not found:
        Console().print(f"namespace {config.namespace} holds no tables")
    else:
        Console().print(tables_table(found, config.namespace))


def reports(
    force: Annotated[
        bool, typer.Option("--force", help="recompute even if nothing changed since")
    ] = False,
    window_seconds: Annotated[
        int,
        typer.Option(
            "--window-seconds",
            envvar="WINDOW_SECONDS",
            help="the reports' window, as the flusher's WINDOW_SECONDS",
        ),
    ] = 300,
    top_n: Annotated[int, typer.Option("--top-n", envvar="TOP_N", help="top-N lists")] = 100,
    catalog_uri: CatalogUri = None,
    warehouse: Warehouse = None,
    namespace: Namespace = None,
    stack: Stack = None,
) -> None:
    """Recompute the report tables from the changes tables now (the flusher does it on its
    schedule, LAKE_REPORTS_INTERVAL_SECONDS)."""
    from analytics_flusher.errors import AnalyticsFlusherError
    from analytics_flusher.store._iceberg import materialize_reports

    try:
        config = catalog_config(catalog_uri, warehouse, namespace, stack)
        result = materialize_reports(
            _catalog(config),
            config.namespace,
            window_ms=window_seconds * 1000,
            top_n=top_n,
            force=force,
        )
    except (LakeCliError, AnalyticsFlusherError, ValueError) as exc:
        _fail(str(exc))
    if result.up_to_date and not result.kept:
        typer.echo("the report tables are up to date (nothing changed since they were written)")
        return
    for name, rows in result.written.items():
        typer.echo(f"{name}: {rows} rows")
    for name in result.kept:
        typer.echo(f"{name}: kept (written meanwhile from the same or newer changes)")
    typer.echo(f"in {result.seconds:.2f} s")


def register_commands(app: typer.Typer) -> None:
    """Add the ``lake`` group to the ``cdc`` application (the descriptor's ``commands``)."""
    lake = typer.Typer(
        no_args_is_help=True,
        help="The analytics lake's Iceberg tables: query, time travel, maintenance.",
    )
    lake.command("query")(query)
    lake.command("snapshots")(snapshots)
    lake.command("tables")(tables)
    lake.command("reports")(reports)
    add_maintenance(lake)
    app.add_typer(lake, name="lake")
