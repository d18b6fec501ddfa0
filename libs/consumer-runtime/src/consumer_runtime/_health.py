"""Liveness and readiness, and the one HTTP port serving ``/livez``, ``/readyz``, ``/metrics``.

The loop writes the state (a few attribute assignments per poll); the server thread reads it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

_log = structlog.get_logger("consumer_runtime.health")


class HealthState:
    """What the probes report. ``liveness_timeout_s`` bounds the time between two polls."""

    def __init__(self, liveness_timeout_s: float) -> None:
        self.liveness_timeout_s = liveness_timeout_s
        self.last_poll = time.monotonic()
        self.subscribed = False
        self.retrying = False
        self.stopping = False
        self.assigned = 0
        self.sink_healthy: Callable[[], bool] = lambda: True

    def tick(self) -> None:
        self.last_poll = time.monotonic()

    def live(self) -> tuple[bool, str]:
        idle = time.monotonic() - self.last_poll
        if idle > self.liveness_timeout_s:
            return False, f"the consumer loop has not polled for {idle:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        if self.stopping:
            return False, "shutting down"
        if not self.subscribed:
            return False, "not subscribed yet"
        if self.retrying:
            return False, "paused: retrying a transient sink failure"
        try:
            healthy = self.sink_healthy()
        except Exception as exc:  # a probe must answer, whatever the sink's check raises
            return False, f"sink health check failed: {exc}"
        if not healthy:
            return False, "sink unreachable"
        # Zero partitions is normal (more members than partitions, or a join in progress).
        return True, f"ok ({self.assigned} partitions assigned)"


class HealthServer:
    """``ThreadingHTTPServer`` in a daemon thread. ``port=0`` picks a free port."""

    # Every interface: the kubelet and Prometheus reach the pod on its own IP.
    def __init__(
        self,
        state: HealthState,
        registry: CollectorRegistry,
        port: int,
        host: str = "0.0.0.0",  # noqa: S104
    ) -> None:
        handler = _handler(state, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-http", daemon=True
        )

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(state: HealthState, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path in ("/livez", "/readyz"):
                ok, reason = state.live() if path == "/livez" else state.ready()
                self._send(200 if ok else 503, (reason + "\n").encode(), "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                # The prober gave up (its timeout passed while the process was busy or
                # stopped): nothing to answer, and nothing to log as a traceback.
                return

        def log_message(self, format: str, *args: object) -> None:
            return  # probes every few seconds would drown the service's own logs

    return Handler
