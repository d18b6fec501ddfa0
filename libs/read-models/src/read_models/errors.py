"""The read library's exception root. Storage failures are wrapped at the boundary into these,
so a caller (the services' CLI commands, the query API) handles ours, never SQLAlchemy's,
botocore's or pyiceberg's. The DynamoDB reads of the search index keep the runtime's
``RetryableError`` for an outage, as the indexer's sink sees it (``sink_kit.aws``)."""

from __future__ import annotations

__all__ = ["InvalidQueryError", "NotFoundError", "ReadModelError", "UnavailableError"]


class ReadModelError(Exception):
    """Root of the errors the read library raises itself."""


class UnavailableError(ReadModelError):
    """The store could not answer: unreachable, timed out, or not provisioned (a missing schema,
    table or namespace). The message says what to check."""


class InvalidQueryError(ReadModelError, ValueError):
    """A read that cannot be answered as given (the message says why)."""


class NotFoundError(ReadModelError, LookupError):
    """What the read names does not exist (a report table the lake does not have)."""
