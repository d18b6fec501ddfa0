"""The offset tracker's lag base for partitions that just joined (pure)."""

from __future__ import annotations

import pytest
from consumer_runtime._message import InMemoryMessage, TopicPartition
from consumer_runtime._offsets import START_SCAN_S, OffsetTracker

pytestmark = pytest.mark.unit

TP0 = TopicPartition("orders", 0)
TP1 = TopicPartition("orders", 1)


def _messages(tp: TopicPartition, offsets: range) -> list[InMemoryMessage]:
    return [InMemoryMessage(tp.topic, tp.partition, o) for o in offsets]


def test_lag_counts_from_the_first_fetched_record_until_something_is_durable() -> None:
    tracker = OffsetTracker(clock=lambda: 0.0)
    tracker.assign([TP0], {})
    assert tracker.lag_base(TP0) is None  # nothing fetched: not known
    assert tracker.note_fetched(_messages(TP0, range(40, 45)))
    assert tracker.lag_base(TP0) == 40 and not tracker.unstarted
    tracker.handed({TP0: 45})
    tracker.record_durable({TP0: 45}, None)
    assert tracker.lag_base(TP0) == 45  # the durable offset from here on


def test_a_partition_that_stays_empty_stops_being_looked_for_after_the_start() -> None:
    """Otherwise every batch would look at each of its records for as long as one assigned
    partition (a topic with few keys) never delivers anything."""
    now = [0.0]
    tracker = OffsetTracker(clock=lambda: now[0])
    tracker.assign([TP0, TP1], {})
    assert tracker.note_fetched(_messages(TP0, range(3)))
    assert tracker.unstarted == {TP1}
    now[0] = START_SCAN_S + 1
    assert not tracker.note_fetched(_messages(TP0, range(3, 6)))
    assert not tracker.unstarted  # the loop's check is now one empty-set test per poll
    assert tracker.lag_base(TP1) is None


def test_a_partition_that_joins_later_is_looked_for_again() -> None:
    now = [0.0]
    tracker = OffsetTracker(clock=lambda: now[0])
    tracker.assign([TP0], {})
    now[0] = 100.0
    tracker.assign([TP1], {})
    assert tracker.note_fetched(_messages(TP1, range(7, 9)))
    assert tracker.lag_base(TP1) == 7
