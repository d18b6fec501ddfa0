"""The search indexer as the platform sees it: its ``ServiceDescriptor``.

Published under the ``cdc.services`` entry point; ``__main__`` runs it, the operator CLI,
the dev stack and verification read it. The settings are read once, by ``SERVICE.run()``.
"""

from __future__ import annotations

from consumer_runtime import CommitStrategy, Decoder, ServiceDescriptor, Sink, WriteBehind

from search_indexer.domain import ProductChange, make_decoder
from search_indexer.settings import DEFAULT_TOPICS, Settings
from search_indexer.sink import SearchIndexSink


def _decoder(settings: Settings) -> Decoder[ProductChange]:
    return make_decoder()


def _sink(settings: Settings) -> Sink[ProductChange]:
    """The index sink, written one batch behind unless ``WRITE_BEHIND`` is off."""
    sink = SearchIndexSink.from_settings(settings)
    return WriteBehind(sink) if settings.write_behind else sink


SERVICE = ServiceDescriptor(
    name="search-indexer",
    topics=DEFAULT_TOPICS,
    # Offsets are committed to Kafka once the writes of their records were answered.
    strategy=CommitStrategy.COMMIT_AFTER_FLUSH,
    settings=Settings,
    decoder=_decoder,
    sink=_sink,
    sink_description=(
        "DynamoDB product search index (each batch written while the next is decoded; its "
        "offsets committed to Kafka once its writes returned)"
    ),
    replay_safety=(
        "writes are version-guarded by the change's source version "
        "(cdc_events.source_version, never the Kafka offset): an item or posting is written "
        "only over an older version, so a re-read or dead-letter-replayed change is skipped "
        "as a duplicate or as stale, also after the topic was re-created; a re-snapshot's "
        "sweep deletes the products it did not read, and no change below the sweep floor is "
        "applied again"
    ),
    verifier="search_indexer.verify:checks",
    commands="search_indexer.cli:register",
)
