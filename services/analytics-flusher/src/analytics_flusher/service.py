"""The analytics flusher as the platform sees it: its ``ServiceDescriptor``.

Published under the ``cdc.services`` entry point; ``__main__`` runs it, the operator CLI,
the dev stack and verification read it. The settings are read once, by ``SERVICE.run()``.
"""

from __future__ import annotations

from consumer_runtime import CommitStrategy, ServiceDescriptor

from analytics_flusher import Decoder, FlusherSettings, build_sink


def _decoder(settings: FlusherSettings) -> Decoder:
    return Decoder()


SERVICE = ServiceDescriptor(
    name="analytics-flusher",
    topics=tuple(FlusherSettings.model_fields["kafka_topics"].default),
    # Offsets are committed to Kafka once the window parts holding their records are written.
    strategy=CommitStrategy.COMMIT_AFTER_FLUSH,
    settings=FlusherSettings,
    decoder=_decoder,
    sink=build_sink,
    sink_description="S3 data lake (offsets committed to Kafka after the window parts are written)",
    replay_safety=(
        "a window part is a pure function of its offset range: the same range is rewritten "
        "with byte-identical objects under the same keys, a replay that cuts windows "
        "elsewhere writes new keys, and the exact totals come from the newest image of each "
        "row by source version (cdc_events.source_version, never the Kafka offset: the image "
        "query, which also drops the rows a re-snapshot's recorded sweep says are gone), so "
        "nothing is counted twice. The per-window summary reports (sales/, "
        "customer_metrics/, ...) are deltas: after a replay, parts with overlapping offset "
        "ranges double-count when summed, so take exact figures from the image query"
    ),
    verifier="analytics_flusher.verify:checks",
    # `cdc lake query | snapshots | tables` over the Iceberg tables.
    commands="analytics_flusher.cli:register_commands",
)
