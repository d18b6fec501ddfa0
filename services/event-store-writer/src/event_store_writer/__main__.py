"""Entry point of the event-store writer: ``python -m event_store_writer`` (wiring only).

Settings come from the environment (see ``settings.py``); the sink factory migrates the schema
(Alembic, under an advisory lock) and creates the coming months' partitions before the first
poll; offsets are stored with the rows (``SINK_MANAGED``).
"""

from __future__ import annotations

import sys

from cdc_events import Parser
from consumer_runtime import CommitStrategy, SettingsError, run_service

from event_store_writer.domain import EventDecoder
from event_store_writer.settings import Settings
from event_store_writer.sink import SERVICE, EventStoreSink


def main() -> int:
    try:
        settings = Settings.load()
    except SettingsError as exc:  # reported the way run_service reports it
        print(f"{SERVICE}: {exc}", file=sys.stderr)
        return 2
    decoder = EventDecoder(
        Parser(max_bytes=settings.max_record_bytes),
        settings.user_events_topics,
        store_transactions=settings.store_transactions,
    )
    return run_service(
        SERVICE,
        settings,
        decoder,
        EventStoreSink.from_settings,
        strategy=CommitStrategy.SINK_MANAGED,
    )


if __name__ == "__main__":
    sys.exit(main())
