"""Entry point: ``python -m stats_aggregator`` (wiring only; settings from the environment)."""

from __future__ import annotations

import sys

from consumer_runtime import CommitStrategy, SettingsError, run_service

from stats_aggregator._decode import Decoder
from stats_aggregator.settings import SERVICE_NAME, Settings
from stats_aggregator.sink import StatsSink


def main() -> int:
    try:
        settings = Settings.load()
    except SettingsError as exc:  # say what is wrong, exit 2 like the runtime
        print(f"{SERVICE_NAME}: {exc}", file=sys.stderr)
        return 2
    return run_service(
        SERVICE_NAME,
        settings,
        Decoder([settings.user_events_topic]),
        StatsSink.from_settings,
        strategy=CommitStrategy.SINK_MANAGED,
    )


if __name__ == "__main__":
    sys.exit(main())
