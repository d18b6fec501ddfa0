"""The commit rule of the Iceberg changes tables (``store._iceberg._positions``), pure: which
appends are fenced (a writer of a newer generation has written one of their partitions), which
are duplicates (every record recorded already), what the others drop and record.

The same rule against a real catalog, with concurrent writers: tests/integration,
``test_analytics_flusher_iceberg_*.py``.
"""

from __future__ import annotations

import pytest
from analytics_flusher.store._iceberg import (
    Position,
    claim_key,
    decode_claims,
    decode_positions,
    encode_positions,
    plan_commit,
)
from consumer_runtime import TopicPartition

P0 = TopicPartition("dbserver1.public.orders", 0)
P1 = TopicPartition("dbserver1.public.orders", 1)
ITEMS0 = TopicPartition("dbserver1.public.order_items", 0)


def test_an_empty_table_takes_everything_and_records_the_end_offsets() -> None:
    plan = plan_commit({}, {P0: 100, P1: 50}, generation=3)
    assert plan.writes
    assert plan.keep_from == {}
    assert plan.positions == {P0: Position(100, 3), P1: Position(50, 3)}


def test_a_continuation_keeps_the_other_partitions_positions() -> None:
    recorded = {P0: Position(100, 3), P1: Position(50, 2), ITEMS0: Position(7, 1)}
    plan = plan_commit(recorded, {P0: 180}, generation=3)
    assert plan.writes
    assert plan.keep_from == {P0: 100}
    assert plan.positions == {P0: Position(180, 3), P1: Position(50, 2), ITEMS0: Position(7, 1)}


@pytest.mark.parametrize("generation", [3, 4, 9], ids=["same", "next", "much-later"])
def test_a_replay_of_recorded_offsets_is_a_duplicate(generation: int) -> None:
    # The same writer retrying, or its successor after a crash between the table commit and the
    # Kafka offset commit (a rejoin is a new generation): nothing to write, nothing committed.
    recorded = {P0: Position(100, 3), P1: Position(50, 3)}
    plan = plan_commit(recorded, {P0: 100, P1: 40}, generation)
    assert plan.duplicate
    assert not plan.writes
    assert not plan.fenced


def test_a_replay_overlapping_a_recorded_range_drops_the_recorded_rows() -> None:
    plan = plan_commit({P0: Position(100, 3)}, {P0: 150}, generation=4)
    assert plan.writes
    assert plan.keep_from == {P0: 100}
    assert plan.positions == {P0: Position(150, 4)}


@pytest.mark.parametrize(
    ("recorded_offset", "end"),
    [(150, 120), (150, 150), (150, 200), (80, 120)],
    ids=["newer-wrote-further", "newer-wrote-the-same", "zombie-ahead", "newer-behind"],
)
def test_a_partition_written_by_a_newer_generation_fences_the_whole_append(
    recorded_offset: int, end: int
) -> None:
    # Whatever the offsets: the newer member owns the partition. A zombie ahead of it would
    # leave a gap and make the owner's next commit look overtaken.
    recorded = {P0: Position(recorded_offset, 5), P1: Position(10, 2)}
    plan = plan_commit(recorded, {P0: end, P1: 60}, generation=4)
    assert plan.fenced == {P0: Position(recorded_offset, 5)}
    assert not plan.writes
    assert not plan.duplicate
    assert plan.positions == {}


def test_an_older_generations_record_is_no_fence() -> None:
    plan = plan_commit({P0: Position(100, 2)}, {P0: 130}, generation=5)
    assert plan.writes
    assert plan.positions == {P0: Position(130, 5)}


def test_a_mixed_append_writes_the_new_partition_and_claims_the_recorded_one() -> None:
    # P0 fully recorded by generation 2, P1 new: the append writes P1's rows, drops P0's, and
    # records P0 unchanged but with its own generation (a zombie of generation 2 is fenced).
    recorded = {P0: Position(100, 2), P1: Position(40, 2)}
    plan = plan_commit(recorded, {P0: 90, P1: 60}, generation=3)
    assert plan.writes
    assert plan.keep_from == {P0: 100, P1: 40}
    assert plan.positions == {P0: Position(100, 3), P1: Position(60, 3)}


def test_a_gap_after_the_recorded_position_is_written() -> None:
    # Records the writer skipped (retention, an operator's reset) are not the rule's to refuse.
    plan = plan_commit({P0: Position(100, 3)}, {P0: 500}, generation=3)
    assert plan.writes
    assert plan.positions == {P0: Position(500, 3)}


@pytest.mark.parametrize(
    ("ends", "generation"),
    [({}, 1), ({P0: -1}, 1), ({P0: 5}, -1)],
    ids=["no-partition", "negative-offset", "negative-generation"],
)
def test_malformed_appends_are_errors(ends: dict[TopicPartition, int], generation: int) -> None:
    with pytest.raises(ValueError):
        plan_commit({}, ends, generation)


def test_positions_round_trip_through_the_summary_text() -> None:
    positions = {
        TopicPartition("t", 10): Position(5, 1),
        TopicPartition("t", 2): Position(0, 7),
        TopicPartition("a", 0): Position(2**62, 2**31),
    }
    text = encode_positions(positions)
    assert text == '{"a":{"0":[4611686018427387904,2147483648]},"t":{"2":[0,7],"10":[5,1]}}'
    assert decode_positions(text) == positions
    assert encode_positions(decode_positions(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"t": []}',
        '{"t": {"x": [1, 2]}}',
        '{"t": {"0": [1]}}',
        '{"t": {"0": [-1, 2]}}',
        '{"t": {"0": [1.5, 2]}}',
        '{"t": {"0": [true, 2]}}',
    ],
)
def test_a_summary_this_module_did_not_write_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        decode_positions(text)


# -- claims: generations per partition, kept in the table's properties ---------------------------


def test_a_claim_above_the_writers_generation_fences_it_before_anything_is_recorded() -> None:
    plan = plan_commit({}, {P0: 10}, {P0: 1}, claimed={P0: 2})
    assert not plan.writes
    assert plan.fenced == {P0: Position(0, 2)}


def test_a_claim_fences_with_the_recorded_offset() -> None:
    plan = plan_commit({P0: Position(40, 1)}, {P0: 60}, {P0: 1}, claimed={P0: 2})
    assert plan.fenced == {P0: Position(40, 2)}


def test_the_writers_own_claim_does_not_fence_it_and_is_recorded_per_partition() -> None:
    plan = plan_commit(
        {P0: Position(40, 1)}, {P0: 60, P1: 5}, {P0: 2, P1: 7}, claimed={P0: 2, P1: 7}
    )
    assert plan.writes
    assert plan.positions == {P0: Position(60, 2), P1: Position(5, 7)}


def test_a_claim_on_another_partition_does_not_fence() -> None:
    plan = plan_commit({}, {P0: 10}, {P0: 1}, claimed={P1: 9})
    assert plan.writes


def test_a_partition_without_a_generation_is_refused() -> None:
    with pytest.raises(ValueError, match="no generation"):
        plan_commit({}, {P0: 10, P1: 3}, {P0: 1})


def test_claims_are_read_from_the_table_properties_only_under_their_prefix() -> None:
    properties = {
        claim_key(P0): "3",
        claim_key(ITEMS0): "1",
        "write.parquet.compression-codec": "zstd",
    }
    assert decode_claims(properties) == {P0: 3, ITEMS0: 1}
    with pytest.raises(ValueError, match="not a claim"):
        decode_claims({"cdc.owner.orders.x": "1"})
    with pytest.raises(ValueError, match="not a claim"):
        decode_claims({claim_key(P0): "-1"})
