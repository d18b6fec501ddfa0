"""The row counter as the platform sees it: its ``ServiceDescriptor`` (``cdc.services``)."""

from __future__ import annotations

from consumer_runtime import CommitStrategy, Decoder, ServiceDescriptor

from row_counter.domain import decode
from row_counter.settings import DEFAULT_TOPICS, NAME, Settings
from row_counter.sink import RowCountSink


def _decoder(settings: Settings) -> Decoder[str]:
    return decode


SERVICE = ServiceDescriptor(
    name=NAME,
    topics=DEFAULT_TOPICS,
    strategy=CommitStrategy.SINK_MANAGED,
    settings=Settings,
    decoder=_decoder,
    sink=RowCountSink.from_settings,
    sink_description="PostgreSQL row_counts table (offsets in its consumer_offsets table)",
    replay_safety=(
        "none: it counts every change it reads, so re-reading records (cdc replay, an offset "
        "reset) counts them again; only redeliveries are absorbed, by the offsets stored with "
        "the counts"
    ),
)
