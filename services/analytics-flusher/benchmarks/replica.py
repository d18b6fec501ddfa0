"""One flusher process for the benchmark's replicas stage (run as a script, not collected).

``python -m analytics_flusher`` (``run_service``: settings from the environment, signals, the
S3 sink) with its sink wrapped to print ``batch <records> <unix time>`` after each batch, and
``flushed <unix time>`` once SIGTERM's final flush is done.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from analytics_flusher import Decoder, FlusherSettings, build_sink
from consumer_runtime import Batch, CommitStrategy, Offsets, run_service
from consumer_runtime.testing import ForwardingSink


class Reporting(ForwardingSink[Any]):
    def write_batch(self, batch: Batch[Any]) -> Offsets | None:
        result = super().write_batch(batch)
        print(f"batch {sum(len(r) for r in batch.records.values())} {time.time()}", flush=True)
        return result


def main() -> int:
    code = run_service(
        "analytics-flusher",
        FlusherSettings,
        Decoder(),
        lambda settings: Reporting(build_sink(settings)),
        strategy=CommitStrategy.COMMIT_AFTER_FLUSH,
    )
    print(f"flushed {time.time()}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
