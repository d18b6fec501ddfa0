"""The read API and its dashboard as a child process of ``make up`` (``python -m query_api``).

It reads the services' read models with the stack's connection settings (the statistics' and
the event store's databases, the search table, the lake's catalog and bucket), scrapes every
service's ``/metrics`` for its pipeline panel (``PIPELINE_METRICS_URLS``), and accepts one read
key generated for the run, written to a key file only this user can read (``API_KEYS_FILE``, as
a mounted Secret in production). Started only when the ``query-api`` package is installed.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

from devstack._proc import ManagedProcess, free_port

__all__ = ["QueryApiProcess"]

# uvicorn finishes the requests in flight on SIGTERM; a dashboard's are milliseconds long.
_STOP_TIMEOUT_S = 15.0
MODULE = "query_api"


class QueryApiProcess:
    """``python -m query_api`` on a free port of 127.0.0.1 with a fresh read key."""

    def __init__(
        self,
        backends: Mapping[str, str],
        metrics_urls: Mapping[str, str],
        work_dir: Path,
    ) -> None:
        """``backends``: the API's backend settings (``DATABASE_URL``, ``EVENT_STORE_URL``,
        ``LAKE_CATALOG_URI``, ..., and the AWS variables); ``metrics_urls``: service name ->
        its ``/metrics`` URL."""
        self.port = free_port()
        self.key = secrets.token_urlsafe(24)
        keys_file = work_dir / "query-api.keys"
        # Created 0600 before the key is written: no moment where another user could read it.
        fd = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"make-up-dashboard:read:{self.key}\n")
        env = {
            **backends,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(self.port),
            "API_KEYS_FILE": str(keys_file),
            "PIPELINE_METRICS_URLS": ",".join(f"{n}={u}" for n, u in metrics_urls.items()),
            "LOG_FORMAT": "json",
        }
        self.process = ManagedProcess(
            "query-api", [sys.executable, "-m", MODULE], work_dir / "query-api.log", env=env
        )

    @staticmethod
    def available() -> bool:
        """Installed with an entry point (``python -m query_api``)."""
        try:
            return importlib.util.find_spec(f"{MODULE}.__main__") is not None
        except ModuleNotFoundError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def docs_url(self) -> str:
        return f"{self.url}/docs"

    @property
    def dashboard_url(self) -> str:
        """The page with the key in the fragment: the browser never sends it to the server."""
        return f"{self.url}/dashboard#key={self.key}"

    def start(self) -> QueryApiProcess:
        self.process.start()
        return self

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (uvicorn finishes what is in flight), SIGKILL after ``timeout``."""
        return self.process.stop(timeout)
