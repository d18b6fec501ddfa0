"""Entry point: ``python -m analytics_flusher`` (wiring only)."""

from __future__ import annotations

import sys

from consumer_runtime import CommitStrategy, run_service

from analytics_flusher._changes import Decoder
from analytics_flusher.settings import FlusherSettings
from analytics_flusher.sink import build_sink

SERVICE = "analytics-flusher"


def main() -> int:
    return run_service(
        SERVICE,
        FlusherSettings,
        Decoder(),
        build_sink,
        strategy=CommitStrategy.COMMIT_AFTER_FLUSH,
    )


if __name__ == "__main__":
    sys.exit(main())
