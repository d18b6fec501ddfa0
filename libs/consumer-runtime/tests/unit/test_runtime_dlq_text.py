"""``consumer_runtime.dlq_text``: how every tool shows a dead letter's bytes."""

from __future__ import annotations

import base64

from consumer_runtime.dlq_text import describe_bytes, id_list, printable, short, utf8


def test_bytes_are_described_losslessly_and_as_text_when_utf8() -> None:
    assert describe_bytes(None) == {"size": None, "base64": None, "text": None}
    assert describe_bytes("caf\u00e9".encode()) == {
        "size": 5,
        "base64": base64.b64encode("caf\u00e9".encode()).decode(),
        "text": "caf\u00e9",
    }
    bad = b"\xff\x00ab"
    assert describe_bytes(bad)["text"] is None and utf8(bad) is None
    assert base64.b64decode(describe_bytes(bad)["base64"]) == bad


def test_control_characters_are_escaped_but_newlines_and_tabs_kept() -> None:
    assert printable("a\x00b\x1b[31m\n\tc\x7f") == ("a\\x00b\\x1b[31m\n\tc\\x7f", True)
    assert printable("plain") == ("plain", False)


def test_short_takes_the_first_line_and_cuts_it() -> None:
    assert short("  first line\nsecond", 40) == "first line"
    assert short("abcdefghij", 5) == "abcd\u2026"
    assert short("   ", 5) == ""


def test_id_lists_show_twenty_then_how_many_more() -> None:
    assert id_list([1, 2, 3]) == "1, 2, 3"
    assert id_list(["0:1", "0:2"]) == "0:1, 0:2"
    many = id_list(list(range(25)))
    assert many.endswith("19 and 5 more") and many.startswith("0, 1, ")
