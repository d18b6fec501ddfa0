"""The lake on the AWS Glue Data Catalog (EKS's catalog), against the emulator's Glue (moto)
and S3: starts on an empty catalog create the Glue database and each changes table once; an
append through ``ExactlyOnceCommitter`` reads back with its positions; and zombies are fenced
as on the SQL catalog.

Glue's part in the fencing is its optimistic locking: pyiceberg's ``GlueCatalog.commit_table``
reads the Glue table (its ``VersionId``), checks the commit against the metadata it points to,
and updates the table with that ``VersionId``; Glue refuses the update if another commit moved
the table in between (``ConcurrentModificationException``). moto ignores ``VersionId``; the
emulator honours it through ``devstack._moto_glue`` (tested on its own in
``libs/devstack/tests/unit/test_devstack_moto_glue.py``). The tests that stall a writer inside
``UpdateTable`` check that it is this refusal which stops the overtaken commit.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from analytics_flusher.errors import FencedCommitError
from analytics_flusher.store._iceberg import (
    ITEMS_CHANGES,
    ORDERS_CHANGES,
    CatalogConfig,
    ExactlyOnceCommitter,
    Position,
    ensure_changes_tables,
    open_catalog,
)
from botocore.exceptions import EndpointConnectionError
from consumer_runtime import RetryableError, TopicPartition
from devstack import AwsEmulator, free_port
from pyiceberg.catalog.glue import GlueCatalog
from pyiceberg.exceptions import CommitFailedException

TOPIC = "dbserver1.public.order_items"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
STARTS = 4


class StallingGlueCatalog(GlueCatalog):
    """The real Glue catalog, whose first ``UpdateTable`` stops after ``commit_table`` read the
    table's version and checked the commit: it sets ``entered`` and waits for ``release``.
    ``commits`` counts ``commit_table`` calls; ``refused`` holds what each update raised."""

    def __init__(self, name: str, **properties: str) -> None:
        super().__init__(name, **properties)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.commits = 0
        self.updates = 0
        self.refused: list[Exception] = []

    def commit_table(self, table: Any, requirements: Any, updates: Any) -> Any:
        self.commits += 1
        return super().commit_table(table, requirements, updates)

    def _update_glue_table(self, *args: Any, **kwargs: Any) -> None:
        self.updates += 1
        if self.updates == 1:
            self.entered.set()
            assert self.release.wait(60), "the test never released the stalled update"
        try:
            super()._update_glue_table(*args, **kwargs)
        except Exception as exc:
            self.refused.append(exc)
            raise


def stalling_writer(config: CatalogConfig) -> tuple[ExactlyOnceCommitter, StallingGlueCatalog]:
    catalog = StallingGlueCatalog(config.name, **config.properties())
    return ExactlyOnceCommitter(catalog, config.namespace), catalog


@pytest.fixture
def pool() -> Any:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


def glue_table(aws: AwsEmulator, config: CatalogConfig, name: str) -> dict[str, Any]:
    table: dict[str, Any] = aws.client("glue").get_table(DatabaseName=config.namespace, Name=name)[
        "Table"
    ]
    return table


def test_concurrent_starts_create_the_glue_database_and_each_table_once(
    glue_config: CatalogConfig, aws_emulator: AwsEmulator, s3_bucket: str
) -> None:
    barrier = threading.Barrier(STARTS)

    def start() -> dict[str, str]:
        barrier.wait(timeout=30)  # every start runs into the database's creation at once
        catalog = open_catalog(glue_config)
        barrier.wait(timeout=30)  # and into the changes tables' creation
        tables = ensure_changes_tables(catalog, glue_config.namespace)
        return {name: str(table.metadata.table_uuid) for name, table in tables.items()}

    with ThreadPoolExecutor(max_workers=STARTS) as threads:
        started = list(threads.map(lambda _: start(), range(STARTS)))

    assert all(uuids == started[0] for uuids in started), started
    glue = aws_emulator.client("glue")
    assert glue.get_database(Name=glue_config.namespace)["Database"]["Name"] == (
        glue_config.namespace
    )
    names = sorted(
        t["Name"] for t in glue.get_tables(DatabaseName=glue_config.namespace)["TableList"]
    )
    assert names == [ITEMS_CHANGES, ORDERS_CHANGES]
    for name in names:
        parameters = glue_table(aws_emulator, glue_config, name)["Parameters"]
        assert parameters["table_type"] == "ICEBERG"
        # Hive-style under the warehouse: where the role's S3 statement allows (terraform/).
        prefix = f"s3://{s3_bucket}/warehouse/{glue_config.namespace}.db/{name}/metadata/"
        assert parameters["metadata_location"].startswith(prefix)
    # Later starts find everything in place.
    again = ensure_changes_tables(open_catalog(glue_config), glue_config.namespace)
    assert {name: str(t.metadata.table_uuid) for name, t in again.items()} == started[0]


def test_appends_read_back_with_their_positions(
    glue_iceberg: Any, glue_config: CatalogConfig, aws_emulator: AwsEmulator
) -> None:
    writer = glue_iceberg.writer()
    before = glue_table(aws_emulator, glue_config, ITEMS_CHANGES)["VersionId"]
    first = writer.append(ITEMS_CHANGES, glue_iceberg.items(0, range(20)), {P0: 20}, 1)
    second = writer.append(ITEMS_CHANGES, glue_iceberg.items(1, range(5), 4), {P1: 5}, 1)
    again = writer.append(ITEMS_CHANGES, glue_iceberg.items(0, range(20)), {P0: 20}, 1)

    assert (first.written, second.written, again.duplicate) == (20, 5, True)
    assert glue_iceberg.rows() == [(0, o, 1) for o in range(20)] + [(1, o, 4) for o in range(5)]
    # A new process (its own catalog client) reads the same positions from Glue.
    fresh = ExactlyOnceCommitter(open_catalog(glue_config), glue_config.namespace)
    assert fresh.positions(ITEMS_CHANGES) == {P0: Position(20, 1), P1: Position(5, 1)}
    table = glue_iceberg.table()
    assert len(table.snapshots()) == 2
    stored = glue_table(aws_emulator, glue_config, ITEMS_CHANGES)
    assert stored["Parameters"]["metadata_location"] == table.metadata_location
    assert stored["VersionId"] != before  # each commit is an UpdateTable
    assert glue_iceberg.orphans() == set()


def test_a_zombie_that_stalled_before_committing_is_fenced(glue_iceberg: Any, pool: Any) -> None:
    zombie, successor = glue_iceberg.writer(), glue_iceberg.writer()
    zombie.append(ITEMS_CHANGES, glue_iceberg.items(0, range(10)), {P0: 10}, generation=1)
    resume = threading.Event()

    def stalled_zombie() -> Any:
        assert resume.wait(30)  # ... past its session timeout
        batch = glue_iceberg.items(0, range(10, 40))
        return zombie.append(ITEMS_CHANGES, batch, {P0: 40}, generation=1)

    outcome = pool.submit(stalled_zombie)
    successor.append(ITEMS_CHANGES, glue_iceberg.items(0, range(10, 60), 2), {P0: 60}, 2)
    resume.set()
    with pytest.raises(FencedCommitError) as refused:
        outcome.result(timeout=60)

    assert refused.value.partitions == {(TOPIC, 0): (60, 2)}
    assert glue_iceberg.rows() == [(0, o, 1) for o in range(10)] + [
        (0, o, 2) for o in range(10, 60)
    ]
    assert glue_iceberg.orphans() == set()


def test_a_commit_overtaken_inside_update_table_is_refused_by_the_version_id(
    glue_iceberg: Any, glue_config: CatalogConfig, pool: Any
) -> None:
    zombie, catalog = stalling_writer(glue_config)
    successor = glue_iceberg.writer()
    successor.append(ITEMS_CHANGES, glue_iceberg.items(0, range(5)), {P0: 5}, generation=1)

    # The zombie's check passes, commit_table reads the Glue table's version and checks the
    # commit against it; it stops just before UpdateTable. The successor commits meanwhile.
    outcome = pool.submit(
        zombie.append, ITEMS_CHANGES, glue_iceberg.items(0, range(5, 30)), {P0: 30}, 1
    )
    assert catalog.entered.wait(60)
    successor.append(ITEMS_CHANGES, glue_iceberg.items(0, range(5, 20), 3), {P0: 20}, 2)
    catalog.release.set()

    with pytest.raises(FencedCommitError):
        outcome.result(timeout=60)
    # Glue refused the update made on the version the zombie had read ...
    [refusal] = catalog.refused
    assert isinstance(refusal, CommitFailedException)
    assert "concurrent update" in str(refusal)
    # ... and pyiceberg's retry never reached Glue with a rebased commit.
    assert (catalog.commits, catalog.updates) == (1, 1)
    assert glue_iceberg.rows() == [(0, o, 1) for o in range(5)] + [(0, o, 3) for o in range(5, 20)]
    assert zombie.positions(ITEMS_CHANGES) == {P0: Position(20, 2)}
    assert len(glue_iceberg.table().snapshots()) == 2
    assert glue_iceberg.orphans() == set()  # the refused attempt's data file was deleted


def test_members_of_one_generation_on_other_partitions_both_commit(
    glue_iceberg: Any, glue_config: CatalogConfig, pool: Any
) -> None:
    first, catalog = stalling_writer(glue_config)
    second = glue_iceberg.writer()
    outcome = pool.submit(first.append, ITEMS_CHANGES, glue_iceberg.items(0, range(8)), {P0: 8}, 3)
    assert catalog.entered.wait(60)
    second.append(ITEMS_CHANGES, glue_iceberg.items(1, range(4)), {P1: 4}, generation=3)
    catalog.release.set()

    result = outcome.result(timeout=60)
    assert result.written == 8
    assert len(catalog.refused) == 1  # refused once by Glue, checked again, committed on top
    assert catalog.commits == 2
    assert glue_iceberg.rows() == [(0, o, 1) for o in range(8)] + [(1, o, 1) for o in range(4)]
    assert second.positions(ITEMS_CHANGES) == {P0: Position(8, 3), P1: Position(4, 3)}
    assert glue_iceberg.orphans() == set()


def test_a_glue_endpoint_that_does_not_answer_is_retryable(glue_config: CatalogConfig) -> None:
    nowhere = dataclasses.replace(glue_config, endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RetryableError, match="AWS Glue unavailable") as caught:
        open_catalog(nowhere)
    assert isinstance(caught.value.__cause__, EndpointConnectionError)
