"""Zombie writers are fenced out of the Iceberg changes tables, on a real catalog (PostgreSQL)
and warehouse (the AWS emulator's S3).

Two members of one consumer group write the same partitions: generation 1 (which stalled past
its session timeout, a zombie) and generation 2 (its successor). Whether the zombie stalls
before its check or inside the catalog commit, after its check passed, its append is refused
with ``FencedCommitError`` and the table holds exactly the successor's rows: pyiceberg's own
retry, which would rebase the zombie's append on the successor's snapshot, is refused (the
control test shows that without it, the overtaken append does land). Members of one generation
on different partitions are not fenced: the one overtaken checks again and commits on top.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from analytics_flusher.errors import FencedCommitError
from analytics_flusher.store._iceberg import ITEMS_CHANGES, Position
from consumer_runtime import FencedError, RetryableError, TopicPartition

TOPIC = "dbserver1.public.order_items"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


@pytest.fixture
def pool() -> Any:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


def test_a_zombie_that_stalled_before_committing_is_fenced(iceberg: Any, pool: Any) -> None:
    zombie, successor = iceberg.writer(), iceberg.writer()
    zombie.append(ITEMS_CHANGES, iceberg.items(0, range(10)), {P0: 10}, generation=1)
    resume, resumed_from = threading.Event(), []

    def stalled_zombie() -> Any:
        resumed_from.append(zombie.positions(ITEMS_CHANGES))  # where it goes on from
        assert resume.wait(30)  # ... past its session timeout
        batch = iceberg.items(0, range(10, 40))
        return zombie.append(ITEMS_CHANGES, batch, {P0: 40, P1: 5}, generation=1)

    outcome = pool.submit(stalled_zombie)
    # The successor (generation 2) resumes from the same position and commits further.
    result = successor.append(
        ITEMS_CHANGES, iceberg.items(0, range(10, 60), quantity=2), {P0: 60}, generation=2
    )
    assert result.written == 50
    resume.set()
    with pytest.raises(FencedCommitError) as refused:
        outcome.result(timeout=60)

    assert resumed_from == [{P0: Position(10, 1)}]
    assert isinstance(refused.value, FencedError)
    assert isinstance(refused.value, RetryableError)  # the runtime pauses, the rebalance sheds
    assert refused.value.partitions == {(TOPIC, 0): (60, 2)}
    expected = [(0, o, 1) for o in range(10)] + [(0, o, 2) for o in range(10, 60)]
    assert iceberg.rows() == expected
    assert successor.positions(ITEMS_CHANGES) == {P0: Position(60, 2)}
    assert iceberg.orphans() == set()


def test_a_commit_overtaken_inside_the_catalog_commit_is_refused_not_rebased(
    iceberg: Any, pool: Any
) -> None:
    zombie, catalog = iceberg.stalling_writer()
    successor = iceberg.writer()
    successor.append(ITEMS_CHANGES, iceberg.items(0, range(5)), {P0: 5}, generation=1)

    # The zombie's check passes (nothing newer recorded); it stops inside the catalog commit.
    outcome = pool.submit(zombie.append, ITEMS_CHANGES, iceberg.items(0, range(5, 30)), {P0: 30}, 1)
    assert catalog.entered.wait(60)
    successor.append(ITEMS_CHANGES, iceberg.items(0, range(5, 20), 3), {P0: 20}, generation=2)
    catalog.release.set()

    with pytest.raises(FencedCommitError):
        outcome.result(timeout=60)
    # One catalog commit: pyiceberg's retry never reached the catalog with a rebased append.
    assert catalog.commits == 1
    assert iceberg.rows() == [(0, o, 1) for o in range(5)] + [(0, o, 3) for o in range(5, 20)]
    assert zombie.positions(ITEMS_CHANGES) == {P0: Position(20, 2)}
    assert len(iceberg.table().snapshots()) == 2
    assert iceberg.orphans() == set()  # the refused attempt's data file was deleted


def test_without_the_pin_pyiceberg_rebases_the_overtaken_commit(iceberg: Any, pool: Any) -> None:
    """The control: the same interleaving with pyiceberg's plain append. Its retry refreshes
    the table and lands the append on top of the successor's snapshot, which is what the
    committer's refusal prevents."""
    _, catalog = iceberg.stalling_writer()
    successor = iceberg.writer()
    table = catalog.load_table(("analytics", ITEMS_CHANGES))
    outcome = pool.submit(table.append, iceberg.items(0, range(5, 30)))
    assert catalog.entered.wait(60)
    successor.append(ITEMS_CHANGES, iceberg.items(0, range(5, 20), 3), {P0: 20}, generation=2)
    catalog.release.set()
    outcome.result(timeout=60)

    assert catalog.commits == 2  # the refused attempt, then the rebased one
    offsets = [offset for _, offset, _ in iceberg.rows()]
    assert len(offsets) == 15 + 25  # the zombie's rows landed next to the successor's


def test_members_of_one_generation_on_other_partitions_both_commit(iceberg: Any, pool: Any) -> None:
    first, catalog = iceberg.stalling_writer()
    second = iceberg.writer()
    outcome = pool.submit(first.append, ITEMS_CHANGES, iceberg.items(0, range(8)), {P0: 8}, 3)
    assert catalog.entered.wait(60)
    second.append(ITEMS_CHANGES, iceberg.items(1, range(4)), {P1: 4}, generation=3)
    catalog.release.set()

    result = outcome.result(timeout=60)
    assert result.written == 8
    assert catalog.commits == 2  # refused once, checked again against the new head, committed
    assert iceberg.rows() == [(0, o, 1) for o in range(8)] + [(1, o, 1) for o in range(4)]
    assert second.positions(ITEMS_CHANGES) == {P0: Position(8, 3), P1: Position(4, 3)}
    assert iceberg.orphans() == set()
