"""The flusher's exception root. Storage and HTTP failures are wrapped here (or mapped to the
runtime's ``RetryableError`` in ``sink``) so handlers never catch botocore or urllib errors."""

from __future__ import annotations


class AnalyticsFlusherError(Exception):
    """Root of the flusher's own errors."""


class HttpSinkUnavailable(AnalyticsFlusherError):
    """The analytics API did not accept a summary after every attempt (5xx, 429, no route)."""
