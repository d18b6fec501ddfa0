"""The commit rule of the Iceberg changes tables, pure: what a snapshot records of the Kafka
partitions it covers, and what an append may do given what the table already records.

A snapshot's summary holds, under ``cdc.positions``, every partition the table has been written
from: its *position* (the next offset to read: every record below it is in the table) and the
*generation* (the writer's consumer-group generation) of the commit that last covered it. An
append by a writer of generation ``g`` carries its end offsets ``e[p]`` (the next offset after
its records) for the partitions ``p`` it covers. Against the positions ``r[p]`` recorded by the
snapshot it was checked on (``plan_commit``), per partition:

- **fenced**: ``p`` was covered by a writer of a higher generation (``gen[p] > g``), whatever
  the offsets: a newer member owns ``p``, so this writer missed a rebalance (a zombie). Then the
  whole append is refused (``FencedCommitError``), nothing is written;
- **recorded**: ``e[p] <= r[p]``: every record of ``p`` in the append is already in the table;
- **new**: otherwise; the rows of ``p`` at offsets ``>= r[p]`` are written, those below it are
  already in the table and dropped (a replay overlapping a recorded range writes only the rest).

If no partition is fenced and every one is *recorded*, the append is a **duplicate** (a replay
after a crash between the table commit and the Kafka offset commit): nothing is committed.
Otherwise the commit records, for each partition it covers, ``max(e[p], r[p])`` with generation
``g``, and keeps every other partition's recorded position as it was, so the latest snapshot
always holds every partition's position.

Offsets order the records of one partition; they are never versions of a row (that is
``source_version``).

**Generations are claims, kept in the table.** A member that is assigned a partition *claims*
it before writing (``_commit.ExactlyOnceCommitter.claim``): a commit of the table's properties
that raises ``cdc.owner.<topic>.<partition>`` (``claim_key``) to one above both the claim and
the generation the table records for it. That number is the member's generation for the
partition (``generation`` may be a mapping per partition), and a claim is ``claimed[p]`` here:
an append whose generation of ``p`` is below ``claimed[p]`` is fenced as well, even before the
new owner has written anything. The claim and every append are commits of the same table
metadata, compared and swapped by the catalog, so a claim landing between a zombie's check and
its commit makes that commit fail and be checked again. Kafka's own group generation is not
used: the Python client does not expose it, and a group deleted and created again starts it
over, below what the table records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from consumer_runtime import TopicPartition

__all__ = [
    "CLAIM_PREFIX",
    "SUMMARY_GENERATION",
    "SUMMARY_POSITIONS",
    "CommitPlan",
    "Position",
    "claim_key",
    "decode_claims",
    "decode_positions",
    "encode_positions",
    "plan_commit",
]

#: The snapshot summary key holding every partition's position (JSON, see ``encode_positions``).
SUMMARY_POSITIONS = "cdc.positions"
#: The snapshot summary key holding the generation of the writer that made the snapshot (the
#: highest of its partitions').
SUMMARY_GENERATION = "cdc.generation"
#: The table property prefix of the claims: ``cdc.owner.<topic>.<partition>`` -> generation.
CLAIM_PREFIX = "cdc.owner."


def claim_key(tp: TopicPartition) -> str:
    """The table property holding ``tp``'s claim."""
    return f"{CLAIM_PREFIX}{tp.topic}.{tp.partition}"


def decode_claims(properties: Mapping[str, str]) -> dict[TopicPartition, int]:
    """Every claim among a table's properties (others are ignored; a malformed claim is a
    ``ValueError``: a property under the prefix that this module did not write)."""
    out: dict[TopicPartition, int] = {}
    for key, value in properties.items():
        if not key.startswith(CLAIM_PREFIX):
            continue
        topic, _, partition = key[len(CLAIM_PREFIX) :].rpartition(".")
        if not topic or not partition.isdigit() or not value.isdigit():
            raise ValueError(f"table property {key}={value!r} is not a claim")
        out[TopicPartition(topic, int(partition))] = int(value)
    return out


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a partition stands in a table: ``offset`` is the next offset to read (every record
    below it is in the table), ``generation`` the generation of the writer that recorded it."""

    offset: int
    generation: int


Positions = dict[TopicPartition, Position]


@dataclass(frozen=True, slots=True)
class CommitPlan:
    """What an append may do (``plan_commit``).

    ``fenced``: the partitions a writer of a higher generation covered (their recorded
    positions); when any, nothing is written. ``duplicate``: every record is already in the
    table; nothing is committed. Otherwise ``keep_from`` gives, per partition, the first offset
    not yet in the table (rows below it are dropped; a partition left out has nothing recorded),
    and ``positions`` is what the commit records (every partition of the table).
    """

    fenced: dict[TopicPartition, Position] = field(default_factory=dict)
    duplicate: bool = False
    keep_from: dict[TopicPartition, int] = field(default_factory=dict)
    positions: Positions = field(default_factory=dict)

    @property
    def writes(self) -> bool:
        return not self.fenced and not self.duplicate


def plan_commit(
    recorded: Mapping[TopicPartition, Position],
    end_offsets: Mapping[TopicPartition, int],
    generation: int | Mapping[TopicPartition, int],
    claimed: Mapping[TopicPartition, int] | None = None,
) -> CommitPlan:
    """The rule of the module docstring: ``recorded`` is what the checked snapshot holds,
    ``end_offsets`` the next offset after the append's records per partition it covers,
    ``generation`` the writer's (one for all, or per partition), ``claimed`` the table's claims.

    A partition fenced by a claim alone (nothing recorded above the writer's generation) is
    reported with the position recorded for it, or offset 0, and the claim's generation."""
    if not end_offsets:
        raise ValueError("an append covers at least one partition")
    gens = (
        dict.fromkeys(end_offsets, generation) if isinstance(generation, int) else dict(generation)
    )
    for tp, end in end_offsets.items():
        if end < 0:
            raise ValueError(f"end offset {end} of {tp} is negative")
        if tp not in gens:
            raise ValueError(f"no generation for {tp}")
        if gens[tp] < 0:
            raise ValueError(f"generation {gens[tp]} of {tp} is negative")
    claimed = claimed or {}
    fenced: dict[TopicPartition, Position] = {}
    for tp in end_offsets:
        before = recorded.get(tp)
        if before is not None and before.generation > gens[tp]:
            fenced[tp] = before
        elif claimed.get(tp, 0) > gens[tp]:
            fenced[tp] = Position(before.offset if before else 0, claimed[tp])
    if fenced:
        return CommitPlan(fenced=fenced)
    new = {tp for tp, end in end_offsets.items() if tp not in recorded or end > recorded[tp].offset}
    if not new:
        return CommitPlan(duplicate=True)
    positions = dict(recorded)
    for tp, end in end_offsets.items():
        before = recorded.get(tp)
        positions[tp] = Position(end if before is None else max(end, before.offset), gens[tp])
    keep_from = {tp: recorded[tp].offset for tp in end_offsets if tp in recorded}
    return CommitPlan(keep_from=keep_from, positions=positions)


def encode_positions(positions: Mapping[TopicPartition, Position]) -> str:
    """``{"<topic>": {"<partition>": [offset, generation], ...}, ...}``, compact, keys sorted
    (partitions in numeric order): the same positions always give the same text."""
    topics: dict[str, dict[str, list[int]]] = {}
    for tp in sorted(positions):
        position = positions[tp]
        topics.setdefault(tp.topic, {})[str(tp.partition)] = [position.offset, position.generation]
    return json.dumps(topics, separators=(",", ":"))


def decode_positions(text: str) -> Positions:
    """The positions ``encode_positions`` wrote; ``ValueError`` on anything else (a summary
    this module did not write must not be read as a position)."""
    try:
        topics = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{SUMMARY_POSITIONS} is not JSON: {text[:200]!r}") from exc
    if not isinstance(topics, dict):
        raise ValueError(f"{SUMMARY_POSITIONS} is not an object: {text[:200]!r}")
    out: Positions = {}
    for topic, partitions in topics.items():
        if not isinstance(partitions, dict):
            raise ValueError(f"{SUMMARY_POSITIONS}[{topic!r}] is not an object")
        for partition, value in partitions.items():
            if (
                not partition.isdigit()
                or not isinstance(value, list)
                or len(value) != 2
                or not all(type(v) is int and v >= 0 for v in value)
            ):
                raise ValueError(f"{SUMMARY_POSITIONS}[{topic!r}][{partition!r}] = {value!r}")
            out[TopicPartition(topic, int(partition))] = Position(value[0], value[1])
    return out
