"""The statistics aggregator as the platform sees it: its ``ServiceDescriptor``.

Published under the ``cdc.services`` entry point; ``__main__`` runs it, the operator CLI,
the dev stack and verification read it. The settings are read once, by ``SERVICE.run()``.
"""

from __future__ import annotations

from consumer_runtime import CommitStrategy, ServiceDescriptor

from stats_aggregator._decode import Decoder
from stats_aggregator.settings import DEFAULT_TOPICS, SERVICE_NAME, Settings
from stats_aggregator.sink import StatsSink


def _decoder(settings: Settings) -> Decoder:
    return Decoder([settings.user_events_topic])


SERVICE = ServiceDescriptor(
    name=SERVICE_NAME,
    topics=DEFAULT_TOPICS,
    # Statistics, per-key states, the alerts outbox and the offsets commit in one transaction.
    strategy=CommitStrategy.SINK_MANAGED,
    settings=Settings,
    decoder=_decoder,
    sink=StatsSink.from_settings,
    sink_description="PostgreSQL statistics read model (offsets in its consumer_offsets table)",
    replay_safety=(
        "every key keeps the source version (cdc_events.source_version: the snapshot "
        "generation, then commit order, then the LSN; never the Kafka offset) of its last "
        "applied change, and a change at or before it is skipped, so a Debezium re-emit, a "
        "re-read snapshot read, an offset reset or a dead letter re-produced at a new offset "
        "doubles nothing; a deleted row keeps its state and version, so a late re-read "
        "creation cannot bring it back; a re-snapshot's sweep deletes the rows it did not read "
        "and nothing below it is applied to that table again (st_sweeps); user events count "
        "once by event_id (user_event_ids); scores are computed as of the latest event time "
        "seen, never the wall clock"
    ),
    verifier="stats_aggregator.verify:checks",
    commands="stats_aggregator.cli:register",
)
