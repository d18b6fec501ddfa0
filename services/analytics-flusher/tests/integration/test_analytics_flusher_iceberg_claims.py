"""Claims and the sink's writer of the Iceberg changes tables, on a real catalog (PostgreSQL)
and warehouse (the AWS emulator's S3).

A member claims its partitions on assignment (a commit of the table's properties raising
``cdc.owner.<topic>.<partition>``); from then on a writer with an older claim is fenced even
before the new owner has written anything, whether it was idle or stalled inside its commit.
``ChangesWriter`` buffers a partition's changes, skips what the table records already (a
replay after a crash between the table commit and the Kafka commit), commits on its interval
and reports as durable only what is committed.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from analytics_flusher import ItemChange
from analytics_flusher.errors import FencedCommitError
from analytics_flusher.store._iceberg import (
    ITEMS_CHANGES,
    ChangesWriter,
    ExactlyOnceCommitter,
    Position,
    decode_claims,
)
from consumer_runtime import TopicPartition

TOPIC = "dbserver1.public.order_items"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
T0_MS = 1_767_225_600_000


def change(offset: int, quantity: int = 1) -> ItemChange:
    return ItemChange(
        item_id=offset,
        order_id=1,
        product_id=1,
        quantity=quantity,
        unit_price=Decimal("1.00"),
        deleted=False,
        op="c",
        source_ts_ms=T0_MS + offset,
        offset=offset,
        version=f"q{offset:061d}",
        event_id=str(offset),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def writer(committer: ExactlyOnceCommitter, clock: Clock | None = None) -> ChangesWriter:
    return ChangesWriter(
        committer, {"order_items": ITEMS_CHANGES}, interval_s=10.0, clock=clock or Clock()
    )


def test_claims_raise_the_generation_and_are_kept_in_the_table(iceberg: Any) -> None:
    first, second = iceberg.writer(), iceberg.writer()
    generations, recorded = first.claim(ITEMS_CHANGES, [P0, P1])
    assert generations == {P0: 1, P1: 1}
    assert recorded == {}
    first.append(ITEMS_CHANGES, iceberg.items(0, range(5)), {P0: 5}, generations)
    generations, recorded = second.claim(ITEMS_CHANGES, [P0])
    assert generations == {P0: 2}
    assert recorded == {P0: Position(5, 1)}
    assert decode_claims(iceberg.table().properties) == {P0: 2, P1: 1}


def test_an_idle_writer_is_fenced_by_a_claim_before_the_new_owner_writes(iceberg: Any) -> None:
    old, new = iceberg.writer(), iceberg.writer()
    mine, _ = old.claim(ITEMS_CHANGES, [P0])
    new.claim(ITEMS_CHANGES, [P0])  # the rebalance old missed; new has written nothing yet
    with pytest.raises(FencedCommitError) as refused:
        old.append(ITEMS_CHANGES, iceberg.items(0, range(5)), {P0: 5}, mine)
    assert refused.value.partitions == {(TOPIC, 0): (0, 2)}
    assert iceberg.rows() == []


def test_a_writer_stalled_in_its_commit_is_fenced_by_a_claim_landing_meanwhile(
    iceberg: Any,
) -> None:
    mine, _ = iceberg.writer().claim(ITEMS_CHANGES, [P0])
    stalled, catalog = iceberg.stalling_writer()  # its first commit (the append) stops inside
    with ThreadPoolExecutor(max_workers=1) as pool:
        outcome = pool.submit(
            stalled.append, ITEMS_CHANGES, iceberg.items(0, range(10)), {P0: 10}, mine
        )
        assert catalog.entered.wait(30)  # checked, and now inside the catalog's commit
        iceberg.writer().claim(ITEMS_CHANGES, [P0])  # the successor's claim lands meanwhile
        catalog.release.set()
        with pytest.raises(FencedCommitError):
            outcome.result(timeout=60)
    assert catalog.commits == 1  # refused by the catalog, checked again, fenced: not retried
    assert iceberg.rows() == []
    assert iceberg.orphans() == set()  # the refused attempt's data files were deleted


def test_the_writer_commits_on_its_interval_and_reports_what_is_durable(iceberg: Any) -> None:
    clock = Clock()
    w = writer(iceberg.writer(), clock)
    w.assign([P0, P1])
    w.claim_pending()
    w.add(P0, [change(0), change(1)], 2)
    w.add(P1, [], 7)  # skipped records only: nothing held back
    assert w.durable(P0) == 0
    assert w.durable(P1) is None
    assert not w.due()
    clock.now = 10.0
    assert w.due()
    assert w.commit() == 2
    assert w.durable(P0) is None
    assert not w.due()
    assert iceberg.rows() == [(0, 0, 1), (0, 1, 1)]
    # A retried batch (the same records again) buffers nothing twice.
    w.add(P0, [change(0), change(1), change(2)], 3)
    assert w.buffered_rows == 1
    assert w.durable(P0) == 2


def test_a_replay_after_a_crash_skips_what_the_table_records(iceberg: Any) -> None:
    crashed = writer(iceberg.writer())
    crashed.assign([P0])
    crashed.claim_pending()
    crashed.add(P0, [change(o) for o in range(6)], 6)
    crashed.commit()  # ... and the process dies before Kafka's commit: offsets 0-5 come again
    again = writer(iceberg.writer())
    again.assign([P0])
    again.claim_pending()
    again.add(P0, [change(o, quantity=2) for o in range(9)], 9)
    assert again.buffered_rows == 3
    assert again.durable(P0) == 6
    again.commit()
    assert iceberg.rows() == [(0, o, 1) for o in range(6)] + [(0, o, 2) for o in range(6, 9)]
    assert again.metrics.skipped.labels("analytics-flusher", ITEMS_CHANGES)._value.get() == 6


def test_a_fenced_commit_keeps_the_buffer_and_writes_nothing(iceberg: Any) -> None:
    old = writer(iceberg.writer())
    old.assign([P0])
    old.claim_pending()
    old.add(P0, [change(0)], 1)
    new = writer(iceberg.writer())
    new.assign([P0])
    new.claim_pending()
    with pytest.raises(FencedCommitError):
        old.commit()
    assert old.durable(P0) == 0  # nothing past it is reported durable
    new.add(P0, [change(0, quantity=3)], 1)
    new.commit()
    assert iceberg.rows() == [(0, 0, 3)]


def test_a_partition_of_an_unknown_topic_is_claimed_with_its_first_change(iceberg: Any) -> None:
    w = ChangesWriter(iceberg.writer(), {}, interval_s=10.0)
    assert not w.holds(P0)
    w.assign([P0])
    assert w.holds(P0)  # assigned, to be claimed: the lake's jobs may run here already
    w.claim_pending()  # the topic names no table: nothing claimed yet
    assert decode_claims(iceberg.table().properties) == {}
    w.add(P0, [change(0)], 1)
    assert decode_claims(iceberg.table().properties) == {P0: 1}
    w.commit()
    assert iceberg.rows() == [(0, 0, 1)]
    w.drop([P0])
    assert not w.holds(P0)


def test_a_commit_runs_in_the_background_while_changes_are_buffered(iceberg: Any) -> None:
    clock = Clock()
    w = writer(iceberg.writer(), clock)
    w.assign([P0])
    w.claim_pending()
    w.add(P0, [change(0), change(1)], 2)
    clock.now = 10.0
    w.poll()  # due: the commit starts on its thread and poll returns
    w.add(P0, [change(2)], 3)  # the consumer goes on meanwhile
    assert w.durable(P0) == 0  # held back by the running commit's first offset
    assert w.commit() == 1  # waits for the running one, then commits the rest
    assert w.durable(P0) is None
    assert iceberg.rows() == [(0, 0, 1), (0, 1, 1), (0, 2, 1)]
    w.close()


def test_a_failed_background_commit_is_raised_and_its_changes_are_kept(iceberg: Any) -> None:
    clock = Clock()
    old = writer(iceberg.writer(), clock)
    old.assign([P0])
    old.claim_pending()
    old.add(P0, [change(0), change(1)], 2)
    new = writer(iceberg.writer())
    new.assign([P0])
    new.claim_pending()
    clock.now = 10.0
    old.poll()
    old.add(P0, [change(2)], 3)
    with pytest.raises(FencedCommitError):
        _poll_until_raised(old)
    assert old.durable(P0) == 0
    assert old.buffered_rows == 3  # put back in front of the buffer, in order
    assert iceberg.rows() == []
    old.close()


def _poll_until_raised(w: ChangesWriter) -> None:
    """Poll until the background commit's failure is raised (the commit fails on its thread;
    the next poll after that raises it)."""
    for _ in range(300):
        w.poll()
        time.sleep(0.1)
