"""The event store's commands of the operator CLI: ``cdc history``, ``cdc state``, ``cdc dlq``.

Named by the service's descriptor (``service.SERVICE``), so the CLI never imports the service
by name: ``history`` and ``state`` as its ``commands`` (``register_commands``); the ``dlq``
commands (``_dlq_cli``: list, show, replay and discard the rows of ``dead_letter_queue``) as its
``dlq_commands``, by which a service gives ``cdc dlq --service <it>`` its own store: the CLI
owns ``cdc dlq`` (every other service's dead letters are in its DLQ topic) and runs these when
the service is the event store (the default). ``history`` and ``state`` read the store at
``--database-url`` (default: ``DATABASE_URL``). ``register`` adds all three to an application
of its own (tests, ``python -c``).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from read_models.events import parse_key, parse_time
from rich.console import Console
from rich.table import Table

_URL = typer.Option(
    "--database-url", envvar="DATABASE_URL", help="SQLAlchemy URL of the event store"
)
_JSON = typer.Option("--json", help="print JSON instead of a table")


def _print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _reader(url: str) -> Any:
    from event_store_writer.store import StoreReader

    return StoreReader(url)


def _key(reader: Any, table: str, key: str) -> dict[str, Any]:
    try:
        columns = None
        if not key.lstrip().startswith("{"):
            columns = reader.key_columns(table)
        return parse_key(key, columns)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="KEY") from None


def history(
    table: Annotated[str, typer.Argument(help="table, e.g. products or public.products")],
    key: Annotated[str, typer.Argument(help="key: 42 for a one-column key, or JSON")],
    database_url: Annotated[str, _URL],
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Print the full history of one row, in source order."""
    from read_models import ReadModelError

    from event_store_writer.errors import StoreQueryError

    reader = _reader(database_url)
    try:
        parsed = _key(reader, table, key)
        events = reader.history(table, parsed)
    except (StoreQueryError, ReadModelError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        reader.close()
    if as_json:
        _print_json([e.to_dict() for e in events])
        return
    console = Console()
    if not events:
        console.print(f"no events stored for {table} {orjson.dumps(parsed).decode()}")
        raise typer.Exit(1)
    out = Table(title=f"{table} {orjson.dumps(parsed).decode()}: {len(events)} events")
    for column in ("source time", "op", "position", "tx", "change"):
        out.add_column(column, overflow="fold")
    for e in events:
        op = "tombstone" if e.kind == "tombstone" else (e.op or "")
        if e.snapshot:
            op += " (snapshot)"
        if e.op == "u" and e.before is not None and e.after is not None:
            change = {k: v for k, v in e.after.items() if e.before.get(k) != v}
        else:
            change = e.after if e.after is not None else e.before
        detail = "" if change is None else orjson.dumps(change).decode()
        if e.unchanged_columns:
            detail += f"  unchanged: {', '.join(e.unchanged_columns)}"
        ts = e.source_ts.isoformat() if e.source_ts is not None else ""
        out.add_row(ts, op, str(e.position or ""), e.tx_id or "", detail)
    console.print(out)


def state(
    table: Annotated[str, typer.Argument(help="table, e.g. products or public.products")],
    key: Annotated[str, typer.Argument(help="key: 42 for a one-column key, or JSON")],
    database_url: Annotated[str, _URL],
    at: Annotated[str, typer.Option(help="ISO-8601 time (UTC if no offset) or 'now'")] = "now",
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Rebuild one row as it was at a time from the event store."""
    from read_models import ReadModelError

    from event_store_writer.errors import StoreQueryError

    try:
        when = parse_time(at)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--at") from None
    reader = _reader(database_url)
    try:
        parsed = _key(reader, table, key)
        row, count = reader.state(table, parsed, when)
    except (StoreQueryError, ReadModelError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        reader.close()
    if as_json:
        _print_json(
            {
                "table": table,
                "key": parsed,
                "at": when.isoformat(),
                "events": count,
                "exists": row is not None,
                "row": row,
            }
        )
        return
    console = Console()
    title = f"{table} {orjson.dumps(parsed).decode()} at {when.isoformat()} ({count} events)"
    if row is None:
        console.print(f"{title}: {'deleted' if count else 'not present'}")
        return
    out = Table(title=title)
    out.add_column("column")
    out.add_column("value", overflow="fold")
    for column, value in row.items():
        out.add_row(column, orjson.dumps(value).decode())
    console.print(out)


def register_commands(app: typer.Typer) -> None:
    """Add ``history`` and ``state`` to the ``cdc`` application (the descriptor's ``commands``)."""
    app.command("history")(history)
    app.command("state")(state)


def dlq_commands() -> typer.Typer:
    """The ``dlq`` commands on ``dead_letter_queue``, for ``cdc dlq --service
    event-store-writer`` (the descriptor's ``dlq_commands``)."""
    from event_store_writer._dlq_cli import dlq_app

    return dlq_app


def register(app: typer.Typer) -> None:
    """Add ``history``, ``state`` and the ``dlq`` group to an application of its own."""
    register_commands(app)
    app.add_typer(dlq_commands(), name="dlq")
