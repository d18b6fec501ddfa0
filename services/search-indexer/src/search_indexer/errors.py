"""The search indexer's exception root. Storage failures surface as the runtime's
``RetryableError`` (see ``sink``); these are the service's own errors."""

from __future__ import annotations

from read_models import InvalidQueryError

# InvalidQueryError: a search that cannot be answered as given; raised by ``ProductSearch``
# (``read_models``), re-exported here.
__all__ = ["InvalidQueryError", "SearchIndexerError"]


class SearchIndexerError(Exception):
    """Root of the search indexer's own errors."""
