"""Terminal and JSON output of the ``cdc dlq`` commands, shared by every dead-letter store.

``cdc dlq`` reads a service's DLQ topic itself (``_dlq_render``) and the event store's
``dead_letter_queue`` table through that service's own commands (``event_store_writer._dlq_cli``);
both show dead letters through these functions, so a record looks the same wherever it waits.
Cells hold arbitrary bytes from the topics: no markup, emoji or highlighting, and long content
is written as it is (``raw``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import typer
from consumer_runtime.dlq_text import printable, utf8
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = [
    "console",
    "done_table",
    "header_value",
    "print_json",
    "raw",
    "require_selection",
    "show_bytes",
    "size",
    "summary_table",
    "when",
]

#: Bytes of a header value shown on a terminal.
HEADER_BYTES = 256


def console() -> Console:
    return Console(highlight=False, emoji=False, soft_wrap=True)


def print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def raw(out: Console, text: str) -> None:
    """A line of content as is: no markup, no wrapping, and no rendering cost (a value can be
    megabytes; rich's layout of one such line takes minutes)."""
    out.file.write(text + "\n")


def when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def size(data: bytes | None) -> str:
    return "null" if data is None else f"{len(data):,} B"


def show_bytes(out: Console, label: str, data: bytes | None, max_bytes: int | None) -> None:
    """A key or value: as text when UTF-8 (control characters escaped), else hex (and base64
    when shown whole); at most ``max_bytes`` (None: all)."""
    if data is None:
        out.print(f"{label}: null", style="bold", markup=False)
        return
    shown = data if max_bytes is None else data[:max_bytes]
    cut = len(shown) < len(data)
    part = f", first {len(shown):,} shown (--max-bytes 0 or --json for all)" if cut else ""
    if utf8(data) is not None:
        body, escaped = printable(shown.decode("utf-8", errors="ignore"))
        note = ", control characters escaped" if escaped else ""
        out.print(f"{label} ({len(data):,} bytes, UTF-8{note}{part})", style="bold", markup=False)
        raw(out, body)
        return
    out.print(f"{label} ({len(data):,} bytes, not UTF-8: hex{part})", style="bold", markup=False)
    raw(out, shown.hex())
    if not cut:
        out.print(f"{label} (base64)", style="bold", markup=False)
        raw(out, base64.b64encode(data).decode())


def header_value(value: bytes | None) -> str:
    """A header's value on one line: text (escaped) or ``hex:``, cut to ``HEADER_BYTES``."""
    if value is None:
        return "null"
    shown = value[:HEADER_BYTES]
    more = f" ... ({len(value):,} bytes)" if len(shown) < len(value) else ""
    if utf8(value) is None:
        return f"hex:{shown.hex()}{more}"
    return printable(shown.decode("utf-8", errors="ignore"))[0] + more


def done_table(
    rows: Iterable[tuple[str, str, str, bytes | None, bytes | None, int]],
    count: int,
    verb: str,
    execute: bool,
) -> Table:
    """What a replay or discard did (or would do, without ``execute``): one row per dead
    letter, ``(id, source position, code, key, value, number of headers)``."""
    past = "replayed" if verb == "replay" else "discarded"
    title = past if execute else f"would be {past} (dry run)"
    out = Table(title=f"{count} {title}")
    for column in ("id", "source", "code", "key", "value", "headers"):
        out.add_column(Text(column), overflow="fold")
    for ident, position, code, key, value, headers in rows:
        out.add_row(ident, Text(position), Text(code), size(key), size(value), str(headers))
    return out


def summary_table(counts: Iterable[tuple[str, str, int]], statuses: Sequence[str]) -> Table:
    """Dead letters per error code and status, ``(code, status, count)`` each, with totals."""
    by_code: dict[str, dict[str, int]] = {}
    for code, status, n in counts:
        by_code.setdefault(code, {})[status] = by_code.get(code, {}).get(status, 0) + n
    out = Table(title="by error code and status")
    out.add_column("code")
    for status in (*statuses, "total"):
        out.add_column(status, justify="right")
    for code, per_status in sorted(by_code.items()):
        cells = [str(per_status.get(s, 0)) for s in statuses]
        out.add_row(Text(code), *cells, str(sum(per_status.values())))
    totals = [str(sum(p.get(s, 0) for p in by_code.values())) for s in statuses]
    grand = sum(sum(p.values()) for p in by_code.values())
    out.add_row("total", *totals, str(grand), style="bold")
    return out


def require_selection(
    given: bool, all_rows: bool, verb: str, *, what: str, listing: str, param_hint: str
) -> None:
    """``replay``/``discard`` act on named dead letters or ``--all``, never both or neither."""
    if given and all_rows:
        raise typer.BadParameter(f"give {what} ids or --all, not both", param_hint=param_hint)
    if not given and not all_rows:
        raise typer.BadParameter(
            f"name the {what}s to {verb}: ids (see `{listing}`), or --all "
            "(narrowed by --topic / --code)",
            param_hint=param_hint,
        )
