"""The admin API's plain types: group states and when a group counts as active."""

from __future__ import annotations

import pytest
from confluent_kafka import ConsumerGroupState
from consumer_runtime import GroupDescription, GroupMember, GroupState, TopicPartition


@pytest.mark.parametrize(
    ("kafka", "ours"),
    [
        (ConsumerGroupState.STABLE, GroupState.STABLE),
        (ConsumerGroupState.EMPTY, GroupState.EMPTY),
        (ConsumerGroupState.DEAD, GroupState.DEAD),
        (ConsumerGroupState.PREPARING_REBALANCING, GroupState.PREPARING_REBALANCE),
        (ConsumerGroupState.COMPLETING_REBALANCING, GroupState.COMPLETING_REBALANCE),
        (ConsumerGroupState.UNKNOWN, GroupState.UNKNOWN),
        (None, GroupState.UNKNOWN),
    ],
)
def test_group_states_use_kafkas_names(kafka: object, ours: GroupState) -> None:
    assert GroupState.from_kafka(kafka) is ours


@pytest.mark.parametrize(
    ("state", "members", "active"),
    [
        (GroupState.EMPTY, 0, False),
        (GroupState.DEAD, 0, False),
        (GroupState.STABLE, 0, True),  # a broker that omits member details
        (GroupState.STABLE, 2, True),
        (GroupState.PREPARING_REBALANCE, 1, True),
        (GroupState.UNKNOWN, 0, True),  # unknown is not known to be safe
        (GroupState.EMPTY, 1, True),
    ],
)
def test_a_group_is_inactive_only_when_empty_or_dead_without_members(
    state: GroupState, members: int, active: bool
) -> None:
    desc = GroupDescription(
        "g",
        state,
        tuple(
            GroupMember(f"m{i}", f"c{i}", "10.0.0.1", assignment=(TopicPartition("t", i),))
            for i in range(members)
        ),
    )
    assert desc.active is active
    assert sorted(desc.assigned_to()) == [TopicPartition("t", i) for i in range(members)]
