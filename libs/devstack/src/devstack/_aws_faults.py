"""A fault-injecting HTTP proxy in front of the AWS emulator, for chaos runs.

Services point ``AWS_ENDPOINT_URL`` at the proxy. It relays every request to the emulator as
received: the request line, every header line byte for byte (``Host`` and the SigV4-signed
headers included, so signatures stay valid) minus the connection-level ones, bodies byte for
byte, chunked framing and trailers verbatim, in both directions; each client connection is
kept alive. While a throttle is on, it answers a seeded random fraction of the chosen
services' requests itself, as AWS does when it throttles: DynamoDB
``ProvisionedThroughputExceededException`` (HTTP 400), S3 ``SlowDown`` (HTTP 503). Pausing the
emulator (SIGSTOP) tests an outage; this tests AWS pushing back while it is up.

Requests are classified by their head alone (``_aws_throttle``: ``dynamodb``, ``s3``, or
``other``, never throttled), which also builds AWS's answers and keeps the seeded switch. It
runs as threads of the caller's process, one per client connection. The relay is raw HTTP/1.1
(``_http1``) rather than ``http.server`` and ``http.client``: their header parsing tripled the
proxy's CPU per request. moto closes its connection after every answer, so the proxy connects
upstream per request, as a direct client does.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import socketserver
import threading
import time
from types import TracebackType
from urllib.parse import urlsplit

from devstack._aws import AWS_TEST_ENV
from devstack._aws_throttle import (
    THROTTLEABLE_SERVICES,
    Answer,
    Faults,
    ProxyStats,
    service_of,
    throttle_answer,
)
from devstack._http1 import CHUNK, Head, copy_body, read_head

__all__ = [
    "THROTTLEABLE_SERVICES",
    "Answer",
    "ProxyStats",
    "ThrottlingProxy",
    "service_of",
    "throttle_answer",
]

_log = logging.getLogger(__name__)

# Bodies up to this size are read whole and sent with their headers in one write (no
# Nagle/delayed-ACK stall, one syscall); larger ones are streamed in CHUNK pieces.
_BUFFERED_BODY = 1024 * 1024
# Longer than any client read timeout (sink-kit: 10 s) plus an emulator pause of the chaos
# schedule (15 s): the proxy must not time out before its client does, but a thread waiting
# on an emulator that never answers must end eventually.
_UPSTREAM_TIMEOUT_S = 300.0
# A stop lets handler threads notice their closed sockets; they end within milliseconds.
_STOP_JOIN_S = 5.0
# serve_forever notices a stop between polls: 50 ms keeps stop() (once per test) quick, and
# 20 idle wake-ups a second cost nothing.
_POLL_S = 0.05


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
    rbufsize = CHUNK
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
            lines = read_head(self.rfile)
            if lines is None:
                return False
            head = Head(lines)
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
                    copy_body(self.rfile, length, lambda _data: None)
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

    def _forward(self, head: Head, length: int | None) -> Head:
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
                    copy_body(self.rfile, length, upstream.sock.sendall)
                while True:
                    lines = read_head(upstream.rfile)
                    if lines is None:
                        raise ConnectionResetError("the emulator closed the connection unanswered")
                    answer = Head(lines)
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

    def _relay_answer(self, answer: Head, method: bytes, keep: bool) -> bool:
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
            copy_body(upstream.rfile, length, self.connection.sendall)
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

    def __init__(self, port: int, upstream: tuple[str, int], faults: Faults) -> None:
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
        self._faults = Faults(seed)
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
