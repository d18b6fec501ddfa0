"""Raw HTTP/1.1 framing for the AWS fault proxy (``_aws_faults``): heads and bodies as received.

The proxy relays bytes, not parsed messages: a head (start line and header lines) is read as
received (``read_head``) and forwarded byte for byte minus the connection-level lines
(``Head.forwardable``; ``Host`` and the SigV4-signed headers stay as signed), and a body is
copied with its framing (``copy_body``: by ``Content-Length``, chunked with its trailers
verbatim, or up to the end of the connection). ``http.server`` and ``http.client`` parse every
header into objects; for the proxy that tripled its CPU per request.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

# Bodies are copied in pieces of this size.
CHUNK = 64 * 1024
_MAX_LINE = 65536
_MAX_HEADERS = 200

# Connection-level headers (RFC 9110 7.6.1): each hop sets its own. Transfer-Encoding stays:
# chunked framing is relayed verbatim, in both directions.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"upgrade"})


def read_head(rfile: io.BufferedIOBase) -> list[bytes] | None:
    """The start line and header lines of a message; None at a clean end of the connection."""
    lines: list[bytes] = []
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if not line:
            if lines:
                raise ValueError("connection closed inside a message head")
            return None
        if len(line) > _MAX_LINE or len(lines) > _MAX_HEADERS:
            raise ValueError("message head too large")
        if line in (b"\r\n", b"\n"):
            if lines:
                return lines
            continue  # RFC 9112 2.2: empty lines before a request line are ignored
        lines.append(line)


class Head:
    """A message head kept as received: forwarded byte for byte, minus hop-by-hop lines."""

    def __init__(self, lines: list[bytes]) -> None:
        self.start, self.lines = lines[0], lines[1:]
        # request: method, target, version; answer: version, status, reason (may be empty)
        self.parts = self.start.split(None, 2)
        answer = self.start.startswith(b"HTTP/")
        if len(self.parts) < (2 if answer else 3) or (answer and not self.parts[1].isdigit()):
            raise ValueError(f"malformed start line {self.start[:100]!r}")
        self.version = self.parts[0 if answer else 2]
        self.fields: dict[str, str] = {}
        for line in self.lines:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():  # obs-fold included
                raise ValueError(f"malformed header line {line[:100]!r}")
            key, text = name.decode("latin-1").lower(), value.strip().decode("latin-1")
            self.fields[key] = f"{self.fields[key]}, {text}" if key in self.fields else text

    def tokens(self, name: str) -> set[str]:
        return {t.strip().lower() for t in self.fields.get(name, "").split(",") if t.strip()}

    @property
    def keeps_alive(self) -> bool:
        connection = self.tokens("connection")
        if self.version == b"HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection

    def forwardable(self) -> bytes:
        drop = _HOP_BY_HOP | self.tokens("connection")
        kept = [line for line in self.lines if line.partition(b":")[0].lower() not in drop]
        return self.start + b"".join(kept)

    def body_length(self) -> int | None:
        """Content-Length; None for a chunked body. A head with neither has no body."""
        encoding = self.fields.get("transfer-encoding")
        if encoding is not None:
            if encoding.replace(" ", "").lower().endswith("chunked"):
                return None
            raise ValueError(f"unsupported Transfer-Encoding {encoding!r}")
        length = int(self.fields.get("content-length", "0"))
        if length < 0:
            raise ValueError(f"negative Content-Length {length}")
        return length


def copy_body(rfile: io.BufferedIOBase, length: int | None, write: Callable[[bytes], Any]) -> None:
    """Copy a body of ``length`` bytes (None: chunked, framing and trailers verbatim; -1: up
    to the end of the connection) from ``rfile`` to ``write``."""
    if length is not None:
        while length:
            data = rfile.read1(CHUNK if length < 0 else min(length, CHUNK))
            if not data:
                if length < 0:
                    return
                raise ValueError("connection closed inside a body")
            write(data)
            length = length - len(data) if length > 0 else length
        return
    while True:
        line = rfile.readline(_MAX_LINE)
        write(line)
        size = int(line.split(b";", 1)[0].strip() or b"x", 16)
        if size < 0:
            raise ValueError(f"negative chunk size {line!r}")
        if size == 0:
            break
        copy_body(rfile, size + 2, write)  # the chunk's data and its CRLF
    while line not in (b"\r\n", b"\n"):  # trailers, up to the blank line
        line = rfile.readline(_MAX_LINE)
        if not line:
            raise ValueError("connection closed inside chunk trailers")
        write(line)
