"""The pure side of ``cdc dlq``: headers as stored and replayed, rendering, options."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import typer
from consumer_runtime.dlq_text import describe_bytes, printable
from event_store_writer import _dlq_cli, _dlq_connect
from event_store_writer._dlq import (
    REPLAYED_FROM_HEADER,
    DeadLetterRow,
    Outcome,
    Skipped,
    check_status,
    parse_since,
    replay_record,
)
from event_store_writer.store._writer import _headers_json
from read_models.events import decode_headers
from rich.console import Console

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _row(**changes: object) -> DeadLetterRow:
    fields: dict[str, object] = {
        "id": 7,
        "created_at": NOW,
        "topic": "dbserver1.public.products",
        "partition": 1,
        "offset": 42,
        "key": b'{"id": 1}',
        "value": b"\xff\xfe",
        "headers": (("a", b"1"), ("nul", None), ("a", b"\x00\xff")),
        "error_type": "cdc_events.ParseError",
        "error_code": "bad_utf8",
        "error_message": "value is not valid UTF-8 at byte 0",
        "retry_count": 0,
        "status": "new",
    }
    fields.update(changes)
    return DeadLetterRow(**fields)  # type: ignore[arg-type]


def test_headers_as_the_writer_stores_them_decode_to_the_same_bytes() -> None:
    headers = (("trace", b"t-1"), ("empty", b""), ("nul", None), ("bin", b"\x00\xff\x80"))
    stored = orjson.loads(_headers_json(headers) or "null")
    assert decode_headers(stored) == headers
    assert decode_headers(None) == ()  # a record without headers is stored as NULL


def test_the_replayed_record_is_the_original_plus_the_replay_header() -> None:
    record = replay_record(_row())
    assert record.key == b'{"id": 1}'
    assert record.value == b"\xff\xfe"
    assert record.headers == (
        ("a", b"1"),
        ("nul", None),
        ("a", b"\x00\xff"),
        (REPLAYED_FROM_HEADER, b"7"),
    )
    # A replay of a replay names the row it came from last, once.
    again = replay_record(_row(id=9, headers=((REPLAYED_FROM_HEADER, b"7"), ("a", b"1"))))
    assert again.headers == (("a", b"1"), (REPLAYED_FROM_HEADER, b"9"))
    tombstone = replay_record(_row(key=None, value=None, headers=()))
    assert (tombstone.key, tombstone.value) == (None, None)


def test_bytes_are_described_losslessly() -> None:
    assert describe_bytes(None) == {"size": None, "base64": None, "text": None}
    assert describe_bytes(b"caf\xc3\xa9") == {"size": 5, "base64": "Y2Fmw6k=", "text": "café"}
    bad = describe_bytes(b"\xff\x00")
    assert bad["text"] is None and base64.b64decode(bad["base64"]) == b"\xff\x00"
    full = _row().to_dict()
    assert full["headers"][1] == {"name": "nul", "size": None, "base64": None, "text": None}
    assert full["value_size"] == 2 and full["header_count"] == 3


def test_control_characters_are_escaped_on_screen() -> None:
    assert printable("a\tb\nc") == ("a\tb\nc", False)
    assert printable("\x1b[31mred") == ("\\x1b[31mred", True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("12h", NOW - timedelta(hours=12)),
        ("7d", NOW - timedelta(days=7)),
        ("2026-11-01T00:00:00", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T01:00:00+01:00", datetime(2026, 11, 1, tzinfo=UTC)),
    ],
)
def test_since_is_a_duration_or_a_time(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


def test_bad_options_say_what_is_expected() -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_since("yesterday", NOW)
    assert check_status("ALL") is None
    assert check_status("replayed") == "replayed"
    with pytest.raises(ValueError, match="new, replayed, discarded, all"):
        check_status("done")


def test_outcome_json() -> None:
    outcome = Outcome(execute=True, done=[_row()], skipped=[Skipped(8, "replayed", "already")])
    out = outcome.to_dict()
    assert [r["id"] for r in out["done"]] == [7]
    assert out["skipped"] == [{"id": 8, "status": "replayed", "reason": "already"}]
    assert out["failed"] is None and out["interrupted"] is False


def _screen(row: DeadLetterRow, max_bytes: int | None) -> list[str]:
    buffer = io.StringIO()
    _dlq_cli._show_row(Console(file=buffer, width=100, soft_wrap=True), row, max_bytes)
    return buffer.getvalue().splitlines()


def test_show_prints_text_hex_and_base64_and_cuts_huge_values() -> None:
    lines = _screen(_row(error_message="[bold]not markup[/bold]"), 4096)
    assert "value (2 bytes, not UTF-8: hex)" in lines
    assert lines[lines.index("value (2 bytes, not UTF-8: hex)") + 1] == "fffe"
    assert lines[lines.index("value (base64)") + 1] == "//4="
    assert '{"id": 1}' in lines and "  nul: null" in lines and "  a: hex:00ff" in lines
    assert "  message  [bold]not markup[/bold]" in lines

    huge = _screen(_row(value=b"x" * 100_000), 1000)
    title = next(line for line in huge if line.startswith("value ("))
    assert "100,000 bytes, UTF-8" in title and "first 1,000 shown" in title
    assert "x" * 1000 in huge and "x" * 1001 not in "\n".join(huge)
    assert "x" * 100_000 in _screen(_row(value=b"x" * 100_000), None)


def test_the_stack_file_is_optional(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(typer.Exit):
        _dlq_connect.store_url(None)
    assert "there is no" in capsys.readouterr().err
    assert _dlq_connect.store_url("postgresql://given") == "postgresql://given"
    stack = tmp_path / _dlq_connect.STACK_FILE
    stack.parent.mkdir(parents=True)
    stack.write_text("{not json")
    with pytest.raises(typer.Exit):
        _dlq_connect.broker(None)
    assert "not a valid stack description" in capsys.readouterr().err
    stack.write_text('{"bootstrap": "localhost:9092", "databases": {}}')
    assert _dlq_connect.broker(None) == "localhost:9092"
    with pytest.raises(typer.Exit):
        _dlq_connect.store_url(None)
    assert "has none" in capsys.readouterr().err
