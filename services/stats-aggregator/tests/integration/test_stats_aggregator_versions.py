"""Source versions beyond the states: the DynamoDB projection's version guard, and a read model
written by the previous release (positions by LSN, migration 0004) on real PostgreSQL and the
AWS emulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from cdc_events.testing import make_change
from consumer_runtime import CommitStrategy
from consumer_runtime.testing import SinkHarness
from devstack import AwsEmulator
from devstack.pytest_plugin import SinkSchema
from sink_kit.aws import ensure_table
from sink_kit.postgres import make_engine
from stats_aggregator import Decoder, InventoryProjection, StatsSink, inventory_table_definition
from stats_aggregator.store import MIGRATIONS

PRODUCTS = "dbserver1.public.products"
S = 30_000_000  # the LSN of the snapshot's consistent point
CUP = {"id": 9, "name": "Cup", "price": Decimal("10.00")}


def _migrate(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    """``alembic upgrade`` (or ``downgrade``) to ``revision``, as ``upgrade_schema`` runs it."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        config.attributes["version_table"] = "alembic_version"
        (command.downgrade if down else command.upgrade)(config, revision)


def _harness(sink: StatsSink) -> SinkHarness[Any]:
    return SinkHarness(sink, Decoder(), strategy=CommitStrategy.SINK_MANAGED, batch_size=50)


def _product(stock: int, lsn: int, commit: int | None, op: str = "u") -> bytes:
    record = make_change(
        op,
        table="products",
        after=CUP | {"stock": stock},
        lsn=lsn,
        sequence=(commit, lsn),
        snapshot="true" if op == "r" else "false",
    )
    assert isinstance(record.value, bytes)
    return record.value


def _rows(engine: sa.Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_the_projection_is_version_guarded_and_replaces_the_previous_releases_items_once(
    sink_schema: SinkSchema, aws_emulator: AwsEmulator, unique_id: str
) -> None:
    dynamo: Any = aws_emulator.client("dynamodb")
    table = f"inventory-{unique_id}"
    ensure_table(dynamo, inventory_table_definition() | {"TableName": table})
    projection = InventoryProjection(dynamo, table, threshold=10)
    engine = make_engine(sink_schema.url)
    _migrate(engine, "head")
    sink = StatsSink(engine, group="g", projection=projection)
    h = _harness(sink)

    def item(pid: int = 9) -> dict[str, Any]:
        got: dict[str, Any] = dynamo.get_item(TableName=table, Key={"pk": {"S": str(pid)}})
        return got["Item"]

    # An item the previous release wrote (version = an LSN, a number): replaced once, by the
    # product's next projected state, here the snapshot read.
    dynamo.put_item(TableName=table, Item=projection.item(9, 77, False, None, S - 5000))
    h.produce(PRODUCTS, [_product(50, S, None, op="r")])
    h.run_until_idle()
    assert item()["stock"] == {"N": "50"}
    read_version = item()["version"]["S"]
    # The transaction open across the snapshot point: its change (LSN below S) is newer.
    h.produce(PRODUCTS, [_product(5, S - 100, None)])
    h.run_until_idle()
    got = item()
    assert (got["stock"], got["low_stock"], got["lsn"]) == ({"N": "5"}, {"BOOL": True},
                                                            {"N": str(S - 100)})  # fmt: skip
    assert got["version"]["S"] > read_version
    [(pos_version, projected_version)] = _rows(
        engine, "SELECT pos_version, projected_version FROM st_products"
    )
    assert got["version"] == {"S": pos_version} and projected_version == pos_version
    # A replica that read the older state writes late: refused, by version and by LSN alike.
    assert projection.put(projection.item(9, 50, False, read_version, S)) is False
    assert projection.put(projection.item(9, 50, False, None, S - 200)) is False
    assert item()["stock"] == {"N": "5"}
    h.shutdown()


def test_a_read_model_of_the_previous_release_is_upgraded_and_stays_exact(
    sink_schema: SinkSchema, aws_emulator: AwsEmulator, unique_id: str
) -> None:
    engine = make_engine(sink_schema.url)
    _migrate(engine, "0003")
    with engine.begin() as conn:  # what the previous release left: positions by LSN
        conn.execute(
            sa.text(
                "INSERT INTO st_products (id, name, price, stock, deleted, pos_lsn, projected_lsn) "
                "VALUES (9, 'Cup', 10.00, 50, false, :lsn, NULL)"
            ),
            {"lsn": S + 1000},
        )
        conn.execute(
            sa.text(
                "INSERT INTO product_stats (product_id, name, price, stock, low_stock, deleted, "
                "units_sold, revenue, item_refs) "
                "VALUES (9, 'Cup', 10.00, 50, false, false, 0, 0, 0)"
            )
        )
    dynamo: Any = aws_emulator.client("dynamodb")
    table = f"inventory-{unique_id}"
    ensure_table(dynamo, inventory_table_definition() | {"TableName": table})
    _migrate(engine, "head")
    assert _rows(engine, "SELECT pos_version, pos_lsn FROM st_products") == [(None, S + 1000)]
    projection = InventoryProjection(dynamo, table, threshold=10)
    sink = StatsSink(engine, group="g", projection=projection)
    h = _harness(sink)
    stock = "SELECT stock FROM product_stats"

    # The pending projection of the old row is written as the previous release wrote it.
    sink.flush()
    got = dynamo.get_item(TableName=table, Key={"pk": {"S": "9"}})["Item"]
    assert (got["stock"], got["version"]) == ({"N": "50"}, {"N": str(S + 1000)})
    # A row positioned by LSN is compared by LSN: a re-emit and an older replay are skipped,
    # the next change applies and gives the row its version.
    h.produce(PRODUCTS, [_product(50, S + 1000, S + 900), _product(70, S + 500, S + 400)])
    h.run_until_idle()
    assert _rows(engine, stock) == [(50,)] and sink.stats["reemits_skipped"] == 2
    h.produce(PRODUCTS, [_product(40, S + 2000, S + 1500)])
    h.run_until_idle()
    [(version, lsn)] = _rows(engine, "SELECT pos_version, pos_lsn FROM st_products")
    assert version is not None and lsn == S + 2000 and _rows(engine, stock) == [(40,)]
    got = dynamo.get_item(TableName=table, Key={"pk": {"S": "9"}})["Item"]
    assert (got["stock"], got["version"]) == ({"N": "40"}, {"S": version})

    # A replica of the previous release, still running during the rolling update, applies a
    # change: it moves pos_lsn and not pos_version. The row is positioned by LSN again.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO st_products AS t (id, name, price, stock, deleted, pos_lsn) "
                "VALUES (9, 'Cup', 10.00, 30, false, :lsn) ON CONFLICT (id) DO UPDATE SET "
                "stock = excluded.stock, pos_lsn = excluded.pos_lsn"
            ),
            {"lsn": S + 3000},
        )
        conn.execute(sa.text("UPDATE product_stats SET stock = 30"))
    # Its projection (sink_kit's put_if_newer: ``version < :v`` with a number) cannot replace
    # this release's item (a text version; DynamoDB compares no number with text, the emulator
    # fails such a request), and it marks the row projected all the same.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE st_products SET projected_lsn = pos_lsn"))
    assert _rows(engine, "SELECT pos_version, pos_lsn FROM st_products") == [(None, S + 3000)]
    # So the change it applied is not applied again (its version is above the stale one), and
    # its state replaces this release's item (its LSN is higher) although that replica could not.
    h.produce(PRODUCTS, [_product(30, S + 3000, S + 2500)])
    h.run_until_idle()
    assert sink.stats["reemits_skipped"] == 3
    sink.flush()
    got = dynamo.get_item(TableName=table, Key={"pk": {"S": "9"}})["Item"]
    assert (got["stock"], got["version"]) == ({"N": "30"}, {"N": str(S + 3000)})
    h.produce(PRODUCTS, [_product(20, S + 4000, S + 3500)])
    h.run_until_idle()
    assert _rows(engine, stock) == [(20,)]
    h.shutdown()

    # A downgrade keeps the positions by LSN the previous release reads.
    engine = make_engine(sink_schema.url)
    _migrate(engine, "0003", down=True)
    assert _rows(engine, "SELECT stock, pos_lsn FROM st_products") == [(20, S + 4000)]
    _migrate(engine, "head")
    engine.dispose()
