"""What the admin API (``_admin.KafkaAdmin``) returns and raises.

Small frozen dataclasses keyed by the runtime's own ``TopicPartition`` (groups, their members and
assignments, a partition's watermarks) and the errors an admin call raises beyond
``KafkaClientError``. No Kafka client here: ``from_kafka`` reads confluent-kafka's result
objects by their attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from consumer_runtime._errors import KafkaClientError
from consumer_runtime._message import TopicPartition


class KafkaUnreachableError(KafkaClientError):
    """No broker answered: the bootstrap address is wrong or the cluster is down."""


class GroupActiveError(KafkaClientError):
    """The group has members, so its committed offsets cannot be changed from outside."""

    def __init__(self, group: str, state: GroupState, members: int) -> None:
        who = f"{members} active member(s)" if members else f"state {state}"
        super().__init__(
            f"consumer group {group!r} is active ({who}); its offsets can only be changed "
            "while it has no members"
        )
        self.group = group
        self.state = state
        self.members = members


class GroupState(StrEnum):
    """A consumer group's state, with Kafka's names."""

    STABLE = "Stable"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    EMPTY = "Empty"
    DEAD = "Dead"
    UNKNOWN = "Unknown"

    @classmethod
    def from_kafka(cls, state: object) -> GroupState:
        name = getattr(state, "name", None)
        return _STATES.get(str(name), cls.UNKNOWN)


_STATES = {
    "STABLE": GroupState.STABLE,
    "PREPARING_REBALANCING": GroupState.PREPARING_REBALANCE,
    "COMPLETING_REBALANCING": GroupState.COMPLETING_REBALANCE,
    "EMPTY": GroupState.EMPTY,
    "DEAD": GroupState.DEAD,
}
# The states in which a group has no members (Dead: it does not exist, or no longer).
_INACTIVE_STATES = frozenset({GroupState.EMPTY, GroupState.DEAD})


@dataclass(frozen=True, slots=True)
class GroupListing:
    """One group of ``list_groups``; the state may be ``Unknown`` if the broker omits it."""

    group_id: str
    state: GroupState
    simple: bool = False

    @classmethod
    def from_kafka(cls, listing: Any) -> GroupListing:
        """From ``confluent_kafka.ConsumerGroupListing``."""
        return cls(
            listing.group_id,
            GroupState.from_kafka(getattr(listing, "state", None)),
            bool(listing.is_simple_consumer_group),
        )


@dataclass(frozen=True, slots=True)
class GroupMember:
    """A member of a consumer group and the partitions assigned to it."""

    member_id: str
    client_id: str
    host: str
    instance_id: str | None = None
    assignment: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """A consumer group's state, members and assignment strategy."""

    group_id: str
    state: GroupState
    members: tuple[GroupMember, ...] = ()
    assignor: str = ""
    coordinator: str | None = None

    @property
    def active(self) -> bool:
        """True unless the group is Empty or Dead and has no members.

        Any other state (Stable, rebalancing, or a state the broker did not report) counts as
        active, like ``kafka-consumer-groups --reset-offsets`` does.
        """
        return bool(self.members) or self.state not in _INACTIVE_STATES

    def assigned_to(self) -> dict[TopicPartition, GroupMember]:
        """Which member holds each assigned partition."""
        return {tp: m for m in self.members for tp in m.assignment}

    @classmethod
    def from_kafka(cls, group: str, desc: Any) -> GroupDescription:
        """From ``confluent_kafka.ConsumerGroupDescription``."""
        coordinator = desc.coordinator
        return cls(
            group_id=group,
            state=GroupState.from_kafka(desc.state),
            members=tuple(
                GroupMember(
                    member_id=m.member_id,
                    client_id=m.client_id or "",
                    host=m.host or "",
                    instance_id=m.group_instance_id,
                    assignment=tuple(
                        sorted(
                            TopicPartition(tp.topic, tp.partition)
                            for tp in (m.assignment.topic_partitions if m.assignment else [])
                        )
                    ),
                )
                for m in desc.members or []
            ),
            assignor=desc.partition_assignor or "",
            coordinator=(
                f"{coordinator.host}:{coordinator.port}" if coordinator is not None else None
            ),
        )


@dataclass(frozen=True, slots=True)
class Watermarks:
    """A partition's offset range: ``low`` is the first offset, ``high`` the end offset."""

    low: int
    high: int
