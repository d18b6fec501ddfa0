"""The search indexer's exception root. Storage failures surface as the runtime's
``RetryableError`` (see ``sink``); these are the service's own errors."""

from __future__ import annotations

__all__ = ["InvalidQueryError", "SearchIndexerError"]


class SearchIndexerError(Exception):
    """Root of the search indexer's own errors."""


class InvalidQueryError(SearchIndexerError, ValueError):
    """A search request that cannot be answered as given (the message says why)."""
