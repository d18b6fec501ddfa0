"""The event-store writer as the platform sees it: its ``ServiceDescriptor``.

Published under the ``cdc.services`` entry point; ``__main__`` runs it, the operator CLI,
the dev stack and verification read it. The settings are read once, by ``SERVICE.run()``.
"""

from __future__ import annotations

from cdc_events import Parser
from consumer_runtime import CommitStrategy, ServiceDescriptor

from event_store_writer.domain import EventDecoder
from event_store_writer.settings import DEFAULT_TOPICS, Settings
from event_store_writer.sink import SERVICE as NAME
from event_store_writer.sink import EventStoreSink


def _decoder(settings: Settings) -> EventDecoder:
    return EventDecoder(
        Parser(max_bytes=settings.max_record_bytes),
        settings.user_events_topics,
        store_transactions=settings.store_transactions,
    )


SERVICE = ServiceDescriptor(
    name=NAME,
    topics=DEFAULT_TOPICS,
    # Rows and offsets in one transaction; the sink migrates the schema (Alembic, under an
    # advisory lock) and creates the coming months' partitions before the first poll.
    strategy=CommitStrategy.SINK_MANAGED,
    settings=Settings,
    decoder=_decoder,
    sink=EventStoreSink.from_settings,
    sink_description="PostgreSQL event store (offsets in its consumer_offsets table)",
    replay_safety=(
        "every change carries a stable event_id, derived from its source position and key, not "
        "from the Kafka offset (the same for a redelivery, a Debezium re-emit and a dead letter "
        "re-produced at a new offset), and an id already stored is dropped (the primary key of "
        "cdc_event_ids; user events: INSERT ... ON CONFLICT (event_id) DO NOTHING), so "
        "re-read records are counted as duplicates and add no row"
    ),
    verifier="event_store_writer.verify:checks",
    commands="event_store_writer.cli:register_commands",
    dlq_commands="event_store_writer.cli:dlq_commands",
)
