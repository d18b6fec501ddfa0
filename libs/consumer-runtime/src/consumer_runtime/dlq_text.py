"""How a dead letter's bytes are shown, the same in every tool that reads dead letters.

A dead letter keeps a record as it was received: its key, value and headers may be anything.
Tools show them lossless in JSON (``describe_bytes``: size, base64, and the text when it is
UTF-8) and readable on a terminal (``printable``: control characters escaped; ``short``: one
line, cut). Pure.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["describe_bytes", "id_list", "printable", "short", "utf8"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def utf8(data: bytes) -> str | None:
    """``data`` as text, or None when it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def describe_bytes(data: bytes | None) -> dict[str, Any]:
    """``{"size", "base64", "text"}``: lossless (base64), readable when UTF-8 (text)."""
    if data is None:
        return {"size": None, "base64": None, "text": None}
    return {"size": len(data), "base64": base64.b64encode(data).decode(), "text": utf8(data)}


def printable(text: str) -> tuple[str, bool]:
    """``text`` with control characters (but newline and tab) escaped, and whether any were."""
    escaped = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return escaped, escaped != text


def short(text: str, width: int) -> str:
    """The first line of ``text``, cut to ``width`` characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "\u2026"


def id_list(ids: Sequence[object]) -> str:
    """``1, 2, 3`` (the first 20, then how many more)."""
    shown = ", ".join(str(i) for i in ids[:20])
    return shown if len(ids) <= 20 else f"{shown} and {len(ids) - 20} more"
