"""The optional HTTP sink: POST each window part's summary to an analytics API.

Used only by ``sink`` (off unless ``HTTP_SINK_URL`` is set). Each POST carries
``Idempotency-Key: <object key>``, so the API can drop the repeat a replay sends. Connection
errors and 5xx/429 answers are retried with exponential backoff; another 4xx is not retried
(the request itself is wrong: retrying cannot fix it) and is reported as rejected.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from analytics_flusher.errors import HttpSinkUnavailable

#: ``transport(url, body, headers, timeout_s) -> status code``; raises ``OSError`` when the
#: endpoint cannot be reached.
Transport = Callable[[str, bytes, dict[str, str], float], int]

# First retry after 0.5 s, doubling: short blips pass unnoticed, longer outages reach the
# runtime's backoff after the last attempt.
_BACKOFF_INITIAL_S = 0.5
_BACKOFF_MAX_S = 8.0

_log = structlog.get_logger("analytics_flusher")


def urllib_transport(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class HttpPoster:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        max_attempts: int = 5,
        transport: Transport = urllib_transport,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._transport = transport
        self._sleep = sleep
        #: Requests by outcome (``cdc_http_sink_requests_total``): accepted (2xx), rejected
        #: (another 4xx, not retried), failed (each attempt that met a connection error, a 5xx
        #: or a 429).
        self.sent = 0
        self.rejected = 0
        self.failed = 0

    def post(self, idempotency_key: str, document: dict[str, Any]) -> bool:
        """True when accepted, False when rejected with a 4xx; raises ``HttpSinkUnavailable``
        after the last attempt failed on a connection error, a 5xx or a 429."""
        body = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
        delay = _BACKOFF_INITIAL_S
        problem = ""
        for attempt in range(1, self._max_attempts + 1):
            try:
                status = self._transport(self.url, body, headers, self._timeout_s)
            except OSError as exc:
                self.failed += 1
                problem = f"unreachable ({exc})"
            else:
                if 200 <= status < 300:
                    self.sent += 1
                    return True
                if 400 <= status < 500 and status != 429:
                    self.rejected += 1
                    _log.warning(
                        "analytics API rejected a window summary; not retrying",
                        status=status,
                        key=idempotency_key,
                    )
                    return False
                self.failed += 1
                problem = f"HTTP {status}"
            if attempt < self._max_attempts:
                self._sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX_S)
        raise HttpSinkUnavailable(
            f"analytics API {self.url}: {problem} after {self._max_attempts} attempts"
        )
