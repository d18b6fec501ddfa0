"""Authentication by API key, and the scope each route requires.

``KeyStore`` holds the ``KeyRing`` of ``API_KEYS_FILE`` plus ``API_KEYS``. The file is read
again when its modification time changes (checked at most every ``_RECHECK_S``), so a rotated
Secret takes effect without a restart; a file that became unreadable or invalid keeps the keys
in force and is logged. A key comes in ``X-API-Key`` or ``Authorization: Bearer <key>``.

``require(scope)`` is the route dependency: no key or an unknown key is ``Unauthorized``
(401), a known key without the scope is ``Forbidden`` (403). The client's name (never its key)
is put on the request's state for the logs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Final

import structlog
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from query_api._keys import ApiKey, KeyRing, Scope, parse_keys

__all__ = ["Forbidden", "KeyStore", "Unauthorized", "require"]

_log = structlog.get_logger("query_api")

# A Secret's update reaches a pod's mounted file within about a minute; checking its mtime
# every few seconds costs one stat call and keeps rotation prompt.
_RECHECK_S: Final = 5.0

_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")
_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token")


class Unauthorized(Exception):
    """No API key, or one the server does not know (401)."""


class Forbidden(Exception):
    """A known key without the scope the route requires (403)."""


class KeyStore:
    """The keys of ``path`` (if it exists) and of ``inline`` (``API_KEYS``)."""

    def __init__(self, path: Path | None, inline: str | None = None) -> None:
        self.path = path
        self._inline = parse_keys(inline, "API_KEYS") if inline else []
        self._file: list[ApiKey] = []
        self._mtime: float | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._load()  # at start, an invalid file is an error, not a log line
        self.ring = KeyRing([*self._file, *self._inline])

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            self._file, self._mtime = [], None
            return
        mtime = self.path.stat().st_mtime
        self._file = parse_keys(self.path.read_text(), str(self.path))
        self._mtime = mtime

    def refresh(self) -> None:
        """Read the file again if it changed (at most every ``_RECHECK_S``)."""
        now = time.monotonic()
        if self.path is None or now - self._checked < _RECHECK_S:
            return
        with self._lock:
            self._checked = now
            try:
                mtime = self.path.stat().st_mtime if self.path.exists() else None
                if mtime == self._mtime:
                    return
                self._load()
            except (OSError, ValueError) as exc:
                _log.error("API key file not reloaded; the keys in force stay", error=str(exc))
                return
            self.ring = KeyRing([*self._file, *self._inline])
            _log.info("API keys reloaded", keys=len(self.ring))

    def authenticate(self, presented: str | None) -> ApiKey:
        self.refresh()
        if not presented:
            raise Unauthorized("send an API key in X-API-Key or Authorization: Bearer")
        key = self.ring.match(presented)
        if key is None:
            raise Unauthorized("the API key is not known to this server")
        return key


def require(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    """The dependency of a route that needs ``scope`` (``admin`` implies ``read``)."""

    async def check(
        request: Request,
        header: Annotated[str | None, Depends(_header)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        store: KeyStore = request.app.state.keys
        key = store.authenticate(header or (bearer.credentials if bearer else None))
        if not key.allows(scope):
            raise Forbidden(f"the key {key.name!r} has scope {key.scope!r}; this needs {scope!r}")
        request.state.client = key.name
        return key

    return check
