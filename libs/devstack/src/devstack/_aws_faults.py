"""A fault-injecting HTTP proxy in front of the AWS emulator, for chaos runs.

Services point ``AWS_ENDPOINT_URL`` at the proxy. It relays every request to the emulator as
received: the request line, every header line byte for byte (``Host`` and the SigV4-signed
headers included, so signatures stay valid) minus the connection-level ones, bodies byte for
byte, chunked framing and trailers verbatim, in both directions; each client connection is
kept alive. While a throttle is on, it answers a seeded random fraction of the chosen
services' requests itself, as AWS does when it throttles: DynamoDB
``ProvisionedThroughputExceededException`` (HTTP 400), S3 ``SlowDown`` (HTTP 503). Pausing the
emulator (SIGSTOP) tests an outage; this tests AWS pushing back while it is up.

Requests are classified by their head alone: ``X-Amz-Target: DynamoDB_20120810.<Op>`` is
``dynamodb``, a request without ``X-Amz-Target`` is ``s3``; moto's control API (``/moto-api/``)
and other JSON targets are ``other``, never throttled. It runs as threads of the caller's
process, one per client connection. The relay is raw HTTP/1.1 rather than ``http.server`` and
``http.client``: their header parsing tripled the proxy's CPU per request. moto closes its
connection after every answer, so the proxy connects upstream per request, as a direct client
does.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
import socket
import socketserver
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from devstack._aws import AWS_TEST_ENV

__all__ = [
    "THROTTLEABLE_SERVICES",
    "Answer",
    "ProxyStats",
    "ThrottlingProxy",
    "service_of",
    "throttle_answer",
]

_log = logging.getLogger(__name__)

THROTTLEABLE_SERVICES = frozenset({"dynamodb", "s3"})

# Bodies up to this size are read whole and sent with their headers in one write (no
# Nagle/delayed-ACK stall, one syscall); larger ones are streamed in _CHUNK pieces.
_BUFFERED_BODY = 1024 * 1024
_CHUNK = 64 * 1024
# Longer than any client read timeout (sink-kit: 10 s) plus an emulator pause of the chaos
# schedule (15 s): the proxy must not time out before its client does, but a thread waiting
# on an emulator that never answers must end eventually.
_UPSTREAM_TIMEOUT_S = 300.0
# A stop lets handler threads notice their closed sockets; they end within milliseconds.
_STOP_JOIN_S = 5.0
# serve_forever notices a stop between polls: 50 ms keeps stop() (once per test) quick, and
# 20 idle wake-ups a second cost nothing.
_POLL_S = 0.05
_MAX_LINE = 65536
_MAX_HEADERS = 200

# Connection-level headers (RFC 9110 7.6.1): each hop sets its own. Transfer-Encoding stays:
# chunked framing is relayed verbatim, in both directions.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"upgrade"})

_DYNAMODB_THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded."
        " Consider increasing your provisioning level with the UpdateTable API.",
    },
    separators=(",", ":"),
).encode()


@dataclass(frozen=True)
class Answer:
    """An HTTP response the proxy gives itself instead of forwarding."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class ProxyStats:
    """Requests per service (``dynamodb``, ``s3``, ``other``) since start or the last reset:
    forwarded to the emulator, throttled by the proxy, failed (emulator unreachable: 502)."""

    forwarded: dict[str, int]
    throttled: dict[str, int]
    failed: dict[str, int]


def service_of(path: str, target: str | None) -> str:
    """The service a request is for, from its path and ``X-Amz-Target`` header."""
    if path.startswith("/moto-api"):
        return "other"
    if target is None:
        return "s3"
    return "dynamodb" if target.startswith("DynamoDB_") else "other"


def throttle_answer(service: str) -> Answer:
    """AWS's answer to a throttled request of ``service`` (``dynamodb`` or ``s3``)."""
    date = formatdate(usegmt=True)
    if service == "dynamodb":
        request_id = uuid.uuid4().hex.upper() + uuid.uuid4().hex[:20].upper()
        headers = [
            ("x-amzn-RequestId", request_id),
            ("x-amz-crc32", str(zlib.crc32(_DYNAMODB_THROTTLED))),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Date", date),
        ]
        return Answer(400, "Bad Request", headers, _DYNAMODB_THROTTLED)
    request_id = uuid.uuid4().hex[:16].upper()
    host_id = uuid.uuid4().hex + uuid.uuid4().hex
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
        "<Message>Please reduce your request rate.</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>"
    ).encode()
    headers = [
        ("x-amz-request-id", request_id),
        ("x-amz-id-2", host_id),
        ("Content-Type", "application/xml"),
        ("Date", date),
    ]
    return Answer(503, "Slow Down", headers, body)


class _Faults:
    """The throttle switch, its seeded random draws and the counters (shared by all threads)."""

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._fraction = 0.0
        self._services: frozenset[str] = frozenset()
        self._counts: dict[str, Counter[str]] = {k: Counter() for k in ("fwd", "thr", "fail")}

    def throttle(self, fraction: float, services: frozenset[str], seed: int | None) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"throttle fraction must be within [0, 1], got {fraction}")
        unknown = services - THROTTLEABLE_SERVICES
        if unknown:
            raise ValueError(
                f"cannot throttle {sorted(unknown)}: choose from {sorted(THROTTLEABLE_SERVICES)}"
            )
        with self._lock:
            if seed is not None:
                self._rng = random.Random(seed)
            self._fraction, self._services = fraction, services

    def should_throttle(self, service: str) -> bool:
        with self._lock:
            # Draw only for requests the throttle covers: the sequence of decisions for those
            # requests then depends on the seed alone.
            if service not in self._services or self._fraction <= 0.0:
                return False
            return self._rng.random() < self._fraction

    def count(self, kind: str, service: str) -> None:
        with self._lock:
            self._counts[kind][service] += 1

    def stats(self, reset: bool) -> ProxyStats:
        with self._lock:
            stats = ProxyStats(*(dict(self._counts[k]) for k in ("fwd", "thr", "fail")))
            if reset:
                for counter in self._counts.values():
                    counter.clear()
        return stats


def _read_head(rfile: io.BufferedIOBase) -> list[bytes] | None:
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


class _Head:
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


def _copy_body(rfile: io.BufferedIOBase, length: int | None, write: Callable[[bytes], Any]) -> None:
    """Copy a body of ``length`` bytes (None: chunked, framing and trailers verbatim; -1: up
    to the end of the connection) from ``rfile`` to ``write``."""
    if length is not None:
        while length:
            data = rfile.read1(_CHUNK if length < 0 else min(length, _CHUNK))
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
        _copy_body(rfile, size + 2, write)  # the chunk's data and its CRLF
    while line not in (b"\r\n", b"\n"):  # trailers, up to the blank line
        line = rfile.readline(_MAX_LINE)
        if not line:
            raise ValueError("connection closed inside chunk trailers")
        write(line)


class _Upstream:
    """One connection to the emulator (moto closes it after every answer; kept when not)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=_UPSTREAM_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile: io.BufferedIOBase = self.sock.makefile("rb")
        self.used = False

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


class _Handler(socketserver.StreamRequestHandler):
    """One client connection: its requests in order (keep-alive), each forwarded or answered."""

    disable_nagle_algorithm = True
    rbufsize = _CHUNK
    server: _Server
    upstream: _Upstream | None = None

    def handle(self) -> None:
        with self.server.handlers_lock:
            self.server.handlers.add(self)
        try:
            while self._one_request():
                pass
        except (OSError, ValueError) as exc:
            _log.debug("client connection %s ended: %r", self.client_address, exc)
        finally:
            self._close_upstream()
            with self.server.handlers_lock:
                self.server.handlers.discard(self)

    def _one_request(self) -> bool:
        """Relay one request; False when the connection must end after it."""
        try:
            lines = _read_head(self.rfile)
            if lines is None:
                return False
            head = _Head(lines)
            method, target = head.parts[0], head.parts[1].decode("latin-1")
            length = head.body_length()
        except ValueError as exc:
            self._answer(_error(400, "Bad Request", f"proxy: malformed request: {exc}"), False)
            return False
        keep = head.keeps_alive
        faults = self.server.faults
        service = service_of(target, head.fields.get("x-amz-target"))
        expects = head.version != b"HTTP/1.0" and head.tokens("expect") == {"100-continue"}
        if faults.should_throttle(service):
            faults.count("thr", service)
            if expects:
                # A client answered before "100 Continue" sends no body: what is left of the
                # request is undefined, so this connection ends with the answer.
                keep = False
            else:
                try:
                    _copy_body(self.rfile, length, lambda _data: None)
                except ValueError:
                    keep = False  # a body cut short: answer, then hang up
            self._answer(throttle_answer(service), keep, head_only=method == b"HEAD")
            return keep
        if expects:
            self.connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            answer = self._forward(head, length)
        except (OSError, ValueError) as exc:
            faults.count("fail", service)
            host, port = self.server.upstream
            message = f"proxy: forwarding to the AWS emulator at {host}:{port} failed: {exc!r}"
            self._answer(_error(502, "Bad Gateway", message), False)  # request may be half read
            return False
        faults.count("fwd", service)
        return self._relay_answer(answer, method, keep)

    def _forward(self, head: _Head, length: int | None) -> _Head:
        body = None
        if length is not None and length <= _BUFFERED_BODY:
            body = self.rfile.read(length)
            if len(body) != length:
                raise ValueError("client closed the connection inside the request body")
        request = head.forwardable() + b"\r\n"
        for attempt in (1, 2):
            if self.upstream is None:
                self.upstream = _Upstream(*self.server.upstream)
            upstream, reused = self.upstream, self.upstream.used
            upstream.used = True
            try:
                if body is not None:
                    upstream.sock.sendall(request + body)
                else:
                    upstream.sock.sendall(request)
                    _copy_body(self.rfile, length, upstream.sock.sendall)
                while True:
                    lines = _read_head(upstream.rfile)
                    if lines is None:
                        raise ConnectionResetError("the emulator closed the connection unanswered")
                    answer = _Head(lines)
                    if not 100 <= int(answer.parts[1]) < 200 or answer.parts[1] == b"101":
                        return answer
                    # Interim answers (moto's "100 Continue" to the forwarded Expect) were
                    # already given to the client by the proxy.
            except (ConnectionResetError, BrokenPipeError):
                self._close_upstream()
                # A kept-alive connection the emulator had closed: retried once on a new one,
                # as urllib3 does, when the body is still at hand.
                if attempt == 2 or not reused or body is None:
                    raise
            except BaseException:
                self._close_upstream()
                raise
        raise AssertionError("unreachable")

    def _relay_answer(self, answer: _Head, method: bytes, keep: bool) -> bool:
        upstream = self.upstream
        assert upstream is not None
        status = int(answer.parts[1])
        length: int | None = 0
        if method != b"HEAD" and status not in (204, 304) and not 100 <= status < 200:
            length = answer.body_length()
            if "content-length" not in answer.fields and length == 0:
                length = -1  # delimited by the end of the connection
        keep = keep and length != -1
        out = answer.forwardable() + (b"" if keep else b"Connection: close\r\n") + b"\r\n"
        if length is not None and 0 <= length <= _BUFFERED_BODY:
            body = upstream.rfile.read(length)
            if len(body) != length:
                raise ValueError("the emulator closed the connection inside a body")
            self.connection.sendall(out + body)
        else:
            self.connection.sendall(out)
            _copy_body(upstream.rfile, length, self.connection.sendall)
        if length == -1 or not answer.keeps_alive:
            self._close_upstream()
        return keep

    def _answer(self, answer: Answer, keep: bool, head_only: bool = False) -> None:
        lines = [f"HTTP/1.1 {answer.status} {answer.reason}"]
        lines += [f"{name}: {value}" for name, value in answer.headers]
        lines.append(f"Content-Length: {len(answer.body)}")
        if not keep:
            lines.append("Connection: close")
        out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.connection.sendall(out if head_only else out + answer.body)

    def _close_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None


def _error(status: int, reason: str, message: str) -> Answer:
    return Answer(status, reason, [("Content-Type", "text/plain")], message.encode())


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # every service's connection pool may connect at once

    def __init__(self, port: int, upstream: tuple[str, int], faults: _Faults) -> None:
        self.upstream = upstream
        self.faults = faults
        self.handlers: set[_Handler] = set()
        self.handlers_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)


class ThrottlingProxy:
    """A proxy in front of the AWS emulator that throttles on demand (see the module doc).

    ``with ThrottlingProxy(emulator.endpoint_url, seed=7) as proxy:`` then point clients at
    ``proxy.url``; ``proxy.throttle(0.5, {"dynamodb"})`` answers half of the DynamoDB requests
    with ``ProvisionedThroughputExceededException`` until ``proxy.clear()``.
    """

    def __init__(self, upstream_url: str, port: int | None = None, seed: int | None = None) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"upstream must be http://host:port, got {upstream_url!r}")
        self._upstream = (parts.hostname, parts.port or 80)
        self._port = port or 0  # 0: the OS picks a free port at bind, without a race
        self._faults = _Faults(seed)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not started: call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The test credentials and region, with ``AWS_ENDPOINT_URL`` pointing at the proxy."""
        return dict(AWS_TEST_ENV, AWS_ENDPOINT_URL=self.url)

    def start(self) -> ThrottlingProxy:
        if self._server is not None:
            raise RuntimeError("the proxy is already started")
        self._server = _Server(self._port, self._upstream, self._faults)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(_POLL_S,),
            name=f"aws-proxy-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and end every connection (clients see the endpoint go away)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.handlers_lock:
            handlers = list(server.handlers)
        for handler in handlers:
            # Also the emulator's side: a thread waiting on a paused emulator ends too.
            upstream = handler.upstream
            for sock in (handler.connection, upstream.sock if upstream else None):
                with contextlib.suppress(OSError):  # already closed
                    if sock is not None:
                        sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + _STOP_JOIN_S
        while server.handlers and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._thread is not None:
            self._thread.join(_STOP_JOIN_S)

    def throttle(
        self,
        fraction: float = 1.0,
        services: set[str] | frozenset[str] = THROTTLEABLE_SERVICES,
        seed: int | None = None,
    ) -> None:
        """Answer ``fraction`` of the requests of ``services`` with AWS's throttling error from
        now on (replacing any earlier throttle); ``seed`` restarts the random draws."""
        self._faults.throttle(fraction, frozenset(services), seed)

    def clear(self) -> None:
        """Forward everything again."""
        self._faults.throttle(0.0, frozenset(), None)

    def stats(self, reset: bool = False) -> ProxyStats:
        return self._faults.stats(reset)

    def __enter__(self) -> ThrottlingProxy:
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
