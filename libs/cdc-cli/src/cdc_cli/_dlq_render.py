"""What ``cdc dlq`` prints for a topic-based DLQ: tables, one dead letter, a replay's report.

Cells hold arbitrary bytes from the topics, so nothing is rendered as rich markup, and a key
or value is written as one raw line (rich's layout of a megabyte-long line takes minutes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer
from consumer_runtime.dlq_text import id_list, printable, short
from rich.table import Table
from rich.text import Text

from cdc_cli._dlq_records import DeadLetterRecord
from cdc_cli._dlq_status import STATES, Outcome, StatusBook
from cdc_cli.dlq_view import console as _console
from cdc_cli.dlq_view import done_table, header_value, show_bytes, summary_table
from cdc_cli.dlq_view import print_json as _print_json
from cdc_cli.dlq_view import raw as _raw

if TYPE_CHECKING:
    from cdc_cli._dlq_topic import TopicDlq

_MESSAGE_WIDTH = 60


def status_fields(dead: DeadLetterRecord, book: StatusBook) -> dict[str, Any]:
    record = book.current.get(dead.id)
    return {
        "status": book.state(dead.id),
        "status_changed_at": None if record is None else record.at,
        "status_changed_by": None if record is None else record.by,
        "status_reason": None if record is None else record.reason,
    }


def _note(dead: DeadLetterRecord) -> str:
    if dead.provenance.truncated:
        return "truncated"
    if dead.source is None:
        return "no source"
    return ""


# -- list ------------------------------------------------------------------------------------


def print_list(
    service: str,
    dlq: TopicDlq,
    matching: Sequence[DeadLetterRecord],
    book: StatusBook,
    limit: int | None,
    as_json: bool,
) -> None:
    newest = sorted(matching, key=lambda r: (r.timestamp_ms, r.id), reverse=True)[:limit]
    counts: dict[tuple[str, str], int] = {}
    for dead in matching:
        key = (dead.provenance.error_code, book.state(dead.id))
        counts[key] = counts.get(key, 0) + 1
    if as_json:
        _print_json(
            {
                "service": service,
                "dlq_topic": dlq.dlq_topic,
                "status_topic": dlq.status_topic,
                "total": len(matching),
                "rows": [{**r.summary(), **status_fields(r, book)} for r in newest],
                "summary": [
                    {"code": c, "status": s, "rows": n} for (c, s), n in sorted(counts.items())
                ],
            }
        )
        return
    console = _console()
    if not newest:
        console.print(f"no dead letters match in {dlq.dlq_topic}", markup=False)
        return
    out = Table(
        title=f"dead letters of {service} ({dlq.dlq_topic}): {len(newest)} of {len(matching)} "
        "shown, newest first"
    )
    keep = {
        "id": max(len(str(r.id)) for r in newest),
        "created (UTC)": 19,
        "code": max(len(r.provenance.error_code) for r in newest),
        "status": 9,
    }
    for column in ("id", "created (UTC)", "source", "code", "message"):
        out.add_column(Text(column), overflow="fold", min_width=keep.get(column))
    out.add_column("status", min_width=keep["status"])
    out.add_column("note")
    for r in newest:
        out.add_row(
            str(r.id),
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            Text(r.position),
            Text(r.provenance.error_code),
            Text(short(r.provenance.error_message, _MESSAGE_WIDTH)),
            book.state(r.id),
            _note(r),
        )
    console.print(out)
    console.print(summary_table(((c, st, n) for (c, st), n in counts.items()), STATES))


# -- show ------------------------------------------------------------------------------------


def print_show(
    dlq: TopicDlq,
    dead: DeadLetterRecord,
    book: StatusBook,
    max_bytes: int | None,
    as_json: bool,
) -> None:
    history = book.history.get(dead.id, [])
    if as_json:
        _print_json(
            {
                "dlq_topic": dlq.dlq_topic,
                **dead.to_dict(),
                **status_fields(dead, book),
                "history": [r.to_dict() for r in history],
            }
        )
        return
    console = _console()
    p = dead.provenance
    console.print(f"dead letter {dead.id} of {dlq.dlq_topic}", style="bold", markup=False)
    fields = [
        ("created", dead.created_at.isoformat()),
        ("source", f"topic {p.topic}, partition {p.partition}, offset {p.offset}"),
        ("service", p.service or "?"),
        ("error", f"{p.error_code} ({p.error_type})"),
        ("message", p.error_message),
        ("status", book.state(dead.id)),
    ]
    if p.truncated:
        fields.append(
            (
                "truncated",
                f"original key,value sizes {p.original_size}, sha256 {p.original_sha256}: "
                "only the first bytes are here; not replayable",
            )
        )
    for name, value in fields:
        _raw(console, f"  {name:<10}{printable(value)[0]}")
    if history:
        console.print(f"status history ({len(history)})", style="bold", markup=False)
        for r in history:
            held = "" if book.current.get(dead.id) != r else "  <- holds"
            extra = "".join(
                f", {label} {value}"
                for label, value in (
                    ("reason", r.reason),
                    ("note", r.note),
                    ("takes over", r.supersedes),
                )
                if value
            )
            restated = " (re-written)" if r.restated else ""
            _raw(
                console,
                printable(
                    f"  {r.at}  {r.state}{restated} by {r.by}, claim {r.claim[:12]}{extra}{held}"
                )[0],
            )
    show_bytes(console, "key", dead.key, max_bytes)
    show_bytes(console, "value", dead.value, max_bytes)
    console.print(f"headers ({len(dead.headers)})", style="bold", markup=False)
    for header, data in dead.headers:
        _raw(console, f"  {printable(header)[0]}: {header_value(data)}")
    console.print(
        f"provenance headers ({len(dead.provenance_headers)})", style="bold", markup=False
    )
    for header, data in dead.provenance_headers:
        _raw(console, f"  {printable(header)[0]}: {header_value(data)}")


# -- replay and discard ----------------------------------------------------------------------


def exit_code(outcome: Outcome) -> int:
    """130 on Ctrl-C; 1 when something failed or an id was not found; else 0."""
    if outcome.interrupted:
        return 130
    if outcome.failed or outcome.error is not None:
        return 1
    return 1 if any(s.status is None for s in outcome.skipped) else 0


def report(dlq: TopicDlq, outcome: Outcome, verb: str, as_json: bool) -> None:
    """Print what a replay/discard did, then exit with ``exit_code``."""
    code = exit_code(outcome)
    if as_json:
        _print_json(
            {
                "action": verb,
                "dlq_topic": dlq.dlq_topic,
                "status_topic": dlq.status_topic,
                **outcome.to_dict(),
            }
        )
        raise typer.Exit(code)
    console = _console()
    if outcome.done:
        rows = (
            (str(r.id), r.position, r.provenance.error_code, r.key, r.value, len(r.headers))
            for r in outcome.done
        )
        out = done_table(rows, len(outcome.done), verb, outcome.execute)
        console.print(out)
    elif not outcome.failed and not outcome.recovered:
        console.print(f"nothing to {verb}", markup=False)
    for dead, where in outcome.recovered:
        console.print(
            f"marked replayed without producing again: {dead.id} (an earlier replay was cut "
            f"off after producing it; found at {where})",
            markup=False,
        )
    by_reason: dict[str, list[str]] = {}
    for s in outcome.skipped:
        by_reason.setdefault(s.reason, []).append(s.id)
    for why, skipped in by_reason.items():
        console.print(f"skipped ({why}): {id_list(skipped)}", markup=False)
    for warning in outcome.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if outcome.error is not None:
        typer.echo(_failure(dlq, outcome, verb), err=True)
    elif not outcome.execute and outcome.done:
        console.print(
            f"dry run: nothing changed; add --execute to {verb} these {len(outcome.done)}",
            markup=False,
        )
    raise typer.Exit(code)


def _failure(dlq: TopicDlq, outcome: Outcome, verb: str) -> str:
    ids = id_list([str(r.id) for r in outcome.failed])
    lines = [f"error: {verb} stopped: {outcome.error}."]
    if outcome.done:
        lines.append(f"  {len(outcome.done)} dead letters before it were {verb}ed and marked so.")
    if verb == "discard":
        lines.append(f"  Not discarded: {ids}; run the command again.")
    elif outcome.in_doubt:
        lines.append(
            f"  In doubt: {ids}. They are claimed (replaying) in {dlq.status_topic} and may "
            "have been produced. Run the replay again: it looks for each in its topic "
            f"(header __cdc.replay.from: {dlq.dlq_topic}/<id>), marks those found replayed "
            "without producing them again, and replays the others once their claim is older "
            "than --takeover-after."
        )
    elif outcome.failed:
        lines.append(
            f"  Not replayed: {ids}. If their claims reached the broker they are in doubt: the "
            "next replay settles them as above."
        )
    lines.append(
        "  If the broker is unreachable, check --bootstrap / KAFKA_BOOTSTRAP_SERVERS and the "
        "KAFKA_* security settings."
    )
    return "\n".join(lines)
