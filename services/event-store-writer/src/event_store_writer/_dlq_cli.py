"""``cdc dlq list|show|replay|discard``: the event store's dead-letter table for operators.

``cdc dlq`` runs these for ``--service event-store-writer``, the default (the CLI finds them
through the service's descriptor, ``cli.dlq_commands``; ``cli.register`` adds them to an
application of its own); other services' dead letters are read from their DLQ topics by the CLI
itself. Where they find what they act on is ``_dlq_connect``'s: the store at ``--database-url``
/ ``DATABASE_URL``, else in the dev stack's ``.devstack/latest/stack.json`` (read by the CLI's
own ``cdc_cli.load_stack``, which is why these modules are only imported by the CLI); ``replay
--execute`` produces through the consumer runtime's publisher to ``--bootstrap`` /
``KAFKA_BOOTSTRAP_SERVERS`` (same fallback; SASL/SSL from the runtime's ``KAFKA_*`` variables).
``replay`` and ``discard`` change nothing without ``--execute``. Exit 1: a row not found or a
record not produced; 2: bad options, the store or the broker unreachable; 130: interrupted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from cdc_cli.dlq_view import console as _console
from cdc_cli.dlq_view import done_table, header_value, require_selection, show_bytes, summary_table
from cdc_cli.dlq_view import print_json as _print_json
from cdc_cli.dlq_view import raw as _raw
from cdc_cli.dlq_view import when as _when
from consumer_runtime.dlq_text import id_list, printable, short
from rich.console import Console
from rich.table import Table
from rich.text import Text

from event_store_writer import _dlq_connect as connect
from event_store_writer._dlq_connect import STACK_FILE

if TYPE_CHECKING:
    from event_store_writer._dlq import DeadLetterRow, Outcome, Selection

_SHOW_BYTES = 4096
_MESSAGE_WIDTH = 60

dlq_app = typer.Typer(
    no_args_is_help=True,
    help=(
        "The event store's dead-letter queue: list, show, replay, discard.\n\n"
        "The rows of table dead_letter_queue: records the writer could not decode, kept as "
        "received. replay produces them again to their original topic; replay and discard "
        "are dry runs without --execute."
    ),
)

_URL_HELP = f"SQLAlchemy URL of the event store (default: from {STACK_FILE}, if there)"
_URL = typer.Option("--database-url", envvar="DATABASE_URL", show_default=False, help=_URL_HELP)
_BOOTSTRAP = typer.Option(
    "--bootstrap",
    envvar="KAFKA_BOOTSTRAP_SERVERS",
    show_default=False,
    help=f"Kafka bootstrap servers for --execute (default: from {STACK_FILE}, if there)",
)
_JSON = typer.Option("--json", help="print JSON instead of tables")
_TOPIC = typer.Option("--topic", help="only rows of this original topic")
_CODE = typer.Option("--code", help="only rows with this error code (e.g. not_json)")
_EXECUTE = typer.Option("--execute", help="do it (without: a dry run that changes nothing)")
_ALL = typer.Option("--all", help="every new row (narrowed by --topic / --code)")
_IDS = typer.Argument(min=1, metavar="ID", show_default=False, help="row ids (see `cdc dlq list`)")


# -- options ---------------------------------------------------------------------------------


def _selection(
    ids: list[int] | None,
    all_rows: bool,
    topic: str | None,
    code: str | None,
    verb: str,
) -> Selection:
    from event_store_writer._dlq import Selection

    require_selection(
        bool(ids), all_rows, verb, what="row", listing="cdc dlq list", param_hint="IDS"
    )
    return Selection(ids=tuple(dict.fromkeys(ids or ())), topic=topic, code=code)


# -- list ------------------------------------------------------------------------------------


@dlq_app.command("list")
def list_rows(
    status: Annotated[
        str, typer.Option(help="new, replayed, discarded or all", show_default=True)
    ] = "all",
    topic: Annotated[str | None, _TOPIC] = None,
    code: Annotated[str | None, _CODE] = None,
    since: Annotated[
        str | None,
        typer.Option(help="created since: 30m, 12h, 7d, or an ISO-8601 time (UTC if no offset)"),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="rows shown, newest first (0: all)")] = 50,
    database_url: Annotated[str | None, _URL] = None,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """List dead letters (newest first) and count them by error code and status."""
    from event_store_writer._dlq import Selection, check_status, parse_since

    try:
        wanted = check_status(status)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--status") from None
    try:
        since_at = None if since is None else parse_since(since, datetime.now(UTC))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    selection = Selection(status=wanted, topic=topic, code=code, since=since_at)
    with connect.open_store(database_url) as reader:
        rows = reader.dead_letters(selection, limit or None)
        counts = reader.dead_letter_counts(selection)
    total = sum(n for _, _, n in counts)
    if as_json:
        _print_json(
            {
                "total": total,
                "rows": [r.summary() for r in rows],
                "summary": [{"code": c, "status": s, "rows": n} for c, s, n in counts],
            }
        )
        return
    console = _console()
    if not rows:
        console.print("no dead letters match", markup=False)
        return
    out = Table(title=f"dead letters: {len(rows)} of {total} shown, newest first")
    # Short columns keep their width; the position and the message wrap (`show` has it all).
    keep = {
        "id": max(len(str(r.id)) for r in rows),
        "created (UTC)": 19,
        "code": max(len(r.error_code) for r in rows),
        "status": 9,
        "retries": 7,
    }
    for column in ("id", "created (UTC)", "source", "code", "message"):
        out.add_column(
            Text(column),
            justify="right" if column == "id" else "left",
            overflow="fold",
            min_width=keep.get(column),
        )
    out.add_column("status", min_width=keep["status"])
    out.add_column("retries", justify="right", min_width=keep["retries"])
    for r in rows:
        out.add_row(
            str(r.id),
            _when(r.created_at),
            Text(r.position),
            Text(r.error_code),
            Text(short(r.error_message, _MESSAGE_WIDTH)),
            r.status,
            str(r.retry_count),
        )
    console.print(out)
    from event_store_writer._dlq import STATUSES

    console.print(summary_table(counts, STATUSES))


# -- show ------------------------------------------------------------------------------------


@dlq_app.command("show")
def show(
    row_id: Annotated[int, typer.Argument(metavar="ID", min=1, help="row id")],
    max_bytes: Annotated[
        int, typer.Option(min=0, help="bytes of the key and value shown (0: all); --json: all")
    ] = _SHOW_BYTES,
    database_url: Annotated[str | None, _URL] = None,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Everything about one dead letter: error, position, status, key, value and headers.

    Bytes are shown as text when they are UTF-8, else as hex (and base64); --json gives them
    all in base64 (plus the text when UTF-8).
    """
    with connect.open_store(database_url) as reader:
        row = reader.dead_letter(row_id)
    if row is None:
        connect.fail(f"no dead letter with id {row_id} (see `cdc dlq list`)", code=1)
    if as_json:
        _print_json(row.to_dict())
        return
    _show_row(_console(), row, max_bytes or None)


def _show_row(console: Console, row: DeadLetterRow, max_bytes: int | None) -> None:
    console.print(f"dead letter {row.id}", style="bold", markup=False)
    fields = [
        ("created", f"{row.created_at.isoformat()}"),
        ("source", f"topic {row.topic}, partition {row.partition}, offset {row.offset}"),
        ("error", f"{row.error_code} ({row.error_type})"),
        ("message", row.error_message),
        ("status", row.status),
        ("retries", str(row.retry_count)),
    ]
    if row.status_changed_at is not None:
        fields.append(
            ("changed", f"{row.status_changed_at.isoformat()} by {row.status_changed_by or '?'}")
        )
    if row.status_reason:
        fields.append(("reason", row.status_reason))
    for name, value in fields:
        _raw(console, f"  {name:<9}{printable(value)[0]}")
    show_bytes(console, "key", row.key, max_bytes)
    show_bytes(console, "value", row.value, max_bytes)
    console.print(f"headers ({len(row.headers)})", style="bold", markup=False)
    for header, data in row.headers:
        _raw(console, f"  {printable(header)[0]}: {header_value(data)}")


# -- replay and discard ----------------------------------------------------------------------


@dlq_app.command("replay")
def replay(
    ids: Annotated[list[int] | None, _IDS] = None,
    all_rows: Annotated[bool, _ALL] = False,
    topic: Annotated[str | None, _TOPIC] = None,
    code: Annotated[str | None, _CODE] = None,
    execute: Annotated[bool, _EXECUTE] = False,
    database_url: Annotated[str | None, _URL] = None,
    bootstrap: Annotated[str | None, _BOOTSTRAP] = None,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Produce dead letters' original records again, to their original topics, once each.

    Each selected new row's key, value and headers go to its topic as received, plus the
    header cdc.dlq.replayed-from: ID. A row is marked replayed (retry_count + 1) only after the
    broker acknowledged its record; rows are locked while they are replayed, so concurrent
    replays never produce a row twice. Rows already replayed or discarded are skipped.
    Without --execute: a dry run listing what would be replayed.
    """
    selection = _selection(ids, all_rows, topic, code, "replay")
    publisher = connect.open_publisher(connect.broker(bootstrap)) if execute else None
    try:
        with connect.open_store(database_url) as reader:
            outcome = reader.replay_dead_letters(
                selection, publisher, changed_by=connect.operator()
            )
    finally:
        if publisher is not None:
            publisher.close()
    _report(outcome, "replay", as_json)


@dlq_app.command("discard")
def discard(
    ids: Annotated[list[int] | None, _IDS] = None,
    all_rows: Annotated[bool, _ALL] = False,
    topic: Annotated[str | None, _TOPIC] = None,
    code: Annotated[str | None, _CODE] = None,
    reason: Annotated[str | None, typer.Option(help="why (kept in status_reason)")] = None,
    execute: Annotated[bool, _EXECUTE] = False,
    database_url: Annotated[str | None, _URL] = None,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Mark new dead letters discarded: they will not be replayed.

    Without --execute: a dry run listing what would be discarded.
    """
    selection = _selection(ids, all_rows, topic, code, "discard")
    with connect.open_store(database_url) as reader:
        outcome = reader.discard_dead_letters(
            selection, execute=execute, changed_by=connect.operator(), reason=reason
        )
    _report(outcome, "discard", as_json)


def _report(outcome: Outcome, verb: str, as_json: bool) -> None:
    """Print what a replay/discard did; exit 1 on a failure or an unknown id, 130 on Ctrl-C."""
    exit_code = 130 if outcome.interrupted else 1 if outcome.failed is not None else 0
    if any(s.status is None for s in outcome.skipped) and exit_code == 0:
        exit_code = 1
    if as_json:
        _print_json({"action": verb, **outcome.to_dict()})
        raise typer.Exit(exit_code)
    console = _console()
    if outcome.done:
        rows = (
            (str(r.id), r.position, r.error_code, r.key, r.value, len(r.headers))
            for r in outcome.done
        )
        out = done_table(rows, len(outcome.done), verb, outcome.execute)
        console.print(out)
    elif outcome.failed is None:
        console.print(f"nothing to {verb}", markup=False)
    by_reason: dict[str, list[int]] = {}
    for s in outcome.skipped:
        by_reason.setdefault(s.reason, []).append(s.id)
    for why, skipped_ids in by_reason.items():
        console.print(f"skipped ({why}): {id_list(skipped_ids)}", markup=False)
    if outcome.failed is not None:
        typer.echo(_failure(outcome), err=True)
    elif not outcome.execute and outcome.done:
        console.print(
            f"dry run: nothing changed; add --execute to {verb} these {len(outcome.done)} rows",
            markup=False,
        )
    raise typer.Exit(exit_code)


def _failure(outcome: Outcome) -> str:
    from event_store_writer._dlq import REPLAYED_FROM_HEADER

    failed = outcome.failed
    if failed is None:
        return ""
    return (
        f"error: row {failed.id} ({failed.position}) was not replayed: {outcome.error}.\n"
        f"  It and the rows after it stay new; {len(outcome.done)} rows before it were "
        "replayed and marked so.\n"
        "  If the broker is unreachable, check --bootstrap / KAFKA_BOOTSTRAP_SERVERS and the "
        "KAFKA_* security settings.\n"
        "  After a timeout or an interruption the broker may still have stored the record: "
        f"look for header {REPLAYED_FROM_HEADER}: {failed.id} in {failed.topic} before "
        f"replaying row {failed.id} again (or discard it)."
    )
