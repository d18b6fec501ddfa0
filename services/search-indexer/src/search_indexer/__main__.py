"""Entry point: ``python -m search_indexer`` (the container's command). Wiring only."""

from __future__ import annotations

import sys

from consumer_runtime import CommitStrategy, run_service

from search_indexer.domain import decode
from search_indexer.settings import Settings
from search_indexer.sink import SearchIndexSink

SERVICE = "search-indexer"


def main() -> int:
    return run_service(
        SERVICE,
        Settings,
        decode,
        SearchIndexSink.from_settings,
        strategy=CommitStrategy.COMMIT_AFTER_FLUSH,
    )


if __name__ == "__main__":
    sys.exit(main())
