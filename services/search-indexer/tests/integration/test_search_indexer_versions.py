"""Versions come from the source, not from Kafka: against the AWS emulator, through the real
consumer loop (``SinkHarness``).

Each test plays a case where the Kafka offset gives the wrong order: a dead letter re-produced
at a new offset (``cdc dlq replay``), a topic re-created with offsets from 0, a streamed change
of a transaction open across the snapshot point (its LSN is below the snapshot's) followed by a
replay of the snapshot read, and an item written by the release that stored the offset as a
number (``N``). The index must end at the source's last change of each product, postings
included.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from cdc_events import Parser, source_version
from cdc_events.testing import make_change
from consumer_runtime.testing import SinkHarness
from search_indexer import IndexTable, SearchIndexSink, document_tokens, verify
from search_indexer._items import parse_product, product_key
from search_indexer.domain import make_decoder

TOPIC = "dbserver1.public.products"


def _row(pid: int, name: str, description: str, price: str = "10.00") -> dict[str, Any]:
    return {
        "id": pid,
        "name": name,
        "description": description,
        "price": Decimal(price),
        "stock": 5,
    }


def _value(
    op: str,
    row: dict[str, Any],
    lsn: int,
    commit: int | None = None,
    *,
    snapshot: str = "false",
) -> bytes:
    """The change as the connector writes it at ``lsn``; ``commit`` is ``source.sequence[0]``
    (the commit LSN of the transaction Debezium processed before this one)."""
    record = make_change(
        op,
        after=row if op != "d" else None,
        before=row if op == "d" else None,
        lsn=lsn,
        sequence=(commit, lsn),
        snapshot=snapshot,
        with_schema=True,
    )
    assert record.value is not None
    return record.value


def _version_of(value: bytes, snapshot_point: int | None = None) -> str:
    """The change's version; ``snapshot_point``: the point of the snapshot whose reads its
    partition carried before it (what the service's decoder keeps, ``cdc_events.Versions``)."""
    event = Parser().parse_record(TOPIC, 0, 0, b"{}", value)
    return source_version(event, snapshot_point)  # type: ignore[arg-type]


def _harness(table: IndexTable) -> SinkHarness[Any]:
    """The sink in the real consumer loop, with the service's decoder (``make_decoder``: one
    ``cdc_events.Versions`` for the harness, as for the process)."""
    return SinkHarness(SearchIndexSink(table), make_decoder())


def _send(harness: SinkHarness[Any], pid: int, *values: bytes) -> None:
    harness.produce(TOPIC, values, key=orjson.dumps({"id": pid}))


def _live_postings(table: IndexTable, pid: int) -> set[str]:
    return {
        item["pk"]["S"].removeprefix("TOKEN#")
        for item in table.scan_all()
        if item["pk"]["S"].startswith("TOKEN#")
        and item["sk"]["S"] == str(pid)
        and not item.get("removed", {}).get("BOOL")
    }


def _item(table: IndexTable, pid: int) -> dict[str, Any]:
    response = table.client.get_item(
        TableName=table.name, Key=product_key(pid), ConsistentRead=True
    )
    item: dict[str, Any] = response["Item"]
    return item


def assert_indexed(table: IndexTable, row: dict[str, Any], version: str | None = None) -> None:
    """The product item and its postings are exactly ``row``'s (at ``version``, an ``S``)."""
    pid = row["id"]
    item = _item(table, pid)
    stored = parse_product(item)
    assert not stored.deleted
    got = (stored.name, stored.description, stored.price)
    assert got == (row["name"], row["description"], row["price"])
    name_tokens, desc_tokens = document_tokens(row["name"], row["description"])
    assert _live_postings(table, pid) == {*name_tokens, *desc_tokens}
    assert "pending_tokens" not in item, item
    if version is not None:
        assert item["version"] == {"S": version}


def test_a_replayed_dead_letter_does_not_overwrite_a_newer_change(index_table: IndexTable) -> None:
    """v1 and v2 of a product are indexed; then v1's exact bytes are produced again (``cdc dlq
    replay``), at a higher offset: the index keeps v2. Product 1 sees the replay in a batch of
    its own, product 2 in the same batch as v1 and v2."""
    v1 = {pid: _value("c", _row(pid, "Teapot", "blue ceramic"), 1000 + pid, 900) for pid in (1, 2)}
    new = {pid: _row(pid, "Teapot", "green glass", "12.00") for pid in (1, 2)}
    v2 = {pid: _value("u", new[pid], 1200 + pid, 1100) for pid in (1, 2)}

    harness = _harness(index_table)
    _send(harness, 1, v1[1], v2[1])
    harness.run_until_idle()
    assert_indexed(index_table, new[1])
    _send(harness, 1, v1[1])  # the dead letter re-produced: offset 2
    _send(harness, 2, v1[2], v2[2], v1[2])  # offsets 3, 4, 5: one batch
    harness.run_until_idle()
    harness.shutdown()

    assert_indexed(index_table, new[1], _version_of(v2[1]))
    assert_indexed(index_table, new[2], _version_of(v2[2]))


def test_a_recreated_topic_needs_no_setting(index_table: IndexTable) -> None:
    """The topic is re-created: offsets start again at 0, the source's positions go on. The
    new changes win without raising anything (there is no VERSION_EPOCH any more), a delete
    indexed from the old topic does not block a re-create from the new one, and a replay of
    an old change through the new topic loses."""
    old = _harness(index_table)
    teapot = [_row(1, "Teapot", f"{colour} ceramic") for colour in ("blue", "red", "grey")]
    _send(old, 1, *(_value("u", r, 2000 + 100 * i, 1900 + 100 * i) for i, r in enumerate(teapot)))
    candle = _row(2, "Candle", "white wax")
    _send(old, 2, _value("c", candle, 2500, 2400), _value("d", candle, 2600, 2500))
    old.run_until_idle()
    old.shutdown()
    assert parse_product(_item(index_table, 2)).deleted

    recreated = _harness(index_table)  # a new log: offsets from 0
    newer = _row(1, "Teapot", "yellow steel", "15.00")
    newer_value = _value("u", newer, 3000, 2900)
    _send(recreated, 1, newer_value)
    again = _row(2, "Candle", "red wax")
    again_value = _value("c", again, 3100, 3000)
    _send(recreated, 2, again_value)
    recreated.run_until_idle()
    assert_indexed(index_table, newer)
    assert_indexed(index_table, again)

    _send(recreated, 1, _value("u", teapot[2], 2200, 2100))  # an old change, higher offset
    recreated.run_until_idle()
    recreated.shutdown()
    assert_indexed(index_table, newer, _version_of(newer_value))


def test_a_change_open_across_the_snapshot_point_wins_over_the_snapshot_read(
    index_table: IndexTable,
) -> None:
    """The snapshot reads a product at the snapshot's LSN; a transaction open across that
    point changed it with a lower LSN and commits after it: Debezium streams it first after
    the snapshot, with sequence ``[null, "<its lsn>"]``. By LSN the read looks newer; the
    change is: the decoder gives it the point of the snapshot its partition just carried as
    generation (``cdc_events.Versions``), and its class (streamed) follows every read of that
    snapshot. The read's bytes re-produced later (a replay) must not bring the read's state
    back either. Product 1: the replay in a batch of its own; product 2: everything in one
    batch."""
    snapshot_lsn, open_lsn = 50_000, 48_000
    read = {
        pid: _value("r", _row(pid, "Lamp", "brass desk"), snapshot_lsn, snapshot="first")
        for pid in (1, 2)
    }
    new = {pid: _row(pid, "Lamp", "matte steel desk", "49.90") for pid in (1, 2)}
    streamed = {pid: _value("u", new[pid], open_lsn + pid) for pid in (1, 2)}
    assert _version_of(streamed[1], snapshot_lsn) > _version_of(read[1])

    harness = _harness(index_table)
    _send(harness, 1, read[1], streamed[1])
    harness.run_until_idle()
    assert_indexed(index_table, new[1])  # offsets get this far too; an LSN order does not
    _send(harness, 1, read[1])  # the read re-produced at a higher offset
    _send(harness, 2, read[2], streamed[2], read[2])
    harness.run_until_idle()
    harness.shutdown()

    assert_indexed(index_table, new[1], _version_of(streamed[1], snapshot_lsn))
    assert_indexed(index_table, new[2], _version_of(streamed[2], snapshot_lsn))


# -- items of the release that stored the Kafka offset (version N) ------------------------------

LEGACY = 10**15 + 41  # VERSION_EPOCH=1, offset 41: what the previous release wrote


def _legacy_posting(token: str, pid: int, version: int, *, removed: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": f"TOKEN#{token}"},
        "sk": {"S": str(pid)},
        "kind": {"S": "posting"},
        "id": {"N": str(pid)},
        "token": {"S": token},
        "version": {"N": str(version)},
    }
    if removed:
        item.update({"removed": {"BOOL": True}, "ttl": {"N": "4102444800"}})
    return item


def _seed_legacy(table: IndexTable) -> None:
    """Product 1 ("Teapot", "blue ceramic") at version N ``LEGACY``, carrying the pending entry
    of a newer attempt that wrote "green" and died, a removal marker of "red"; product 2 a
    deletion marker at version N."""
    items = [
        {
            **product_key(1),
            "kind": {"S": "product"},
            "id": {"N": "1"},
            "name": {"S": "Teapot"},
            "description": {"S": "blue ceramic"},
            "price": {"N": "10.00"},
            "price_bucket": {"S": "P2-1"},
            "stock": {"N": "5"},
            "in_stock": {"BOOL": True},
            "name_tokens": {"L": [{"S": "teapot"}]},
            "desc_tokens": {"L": [{"S": "blue"}, {"S": "ceramic"}]},
            "version": {"N": str(LEGACY)},
            "kafka_partition": {"N": "0"},
            "kafka_offset": {"N": "41"},
            "gsi_name_pk": {"S": "NAME#t"},
            "name_norm": {"S": "teapot"},
            "pending_tokens": {"SS": [f"green@{LEGACY + 1}"]},
        },
        _legacy_posting("teapot", 1, LEGACY),
        _legacy_posting("blue", 1, LEGACY),
        _legacy_posting("ceramic", 1, LEGACY),
        _legacy_posting("green", 1, LEGACY + 1),
        _legacy_posting("red", 1, LEGACY - 5, removed=True),
        {
            **product_key(2),
            "kind": {"S": "deleted"},
            "id": {"N": "2"},
            "deleted": {"BOOL": True},
            "version": {"N": str(LEGACY + 7)},
            "ttl": {"N": "4102444800"},
            "kafka_partition": {"N": "0"},
            "kafka_offset": {"N": "48"},
        },
    ]
    for item in items:
        table.client.put_item(TableName=table.name, Item=item)


def _versions_check(table: IndexTable, rows: list[dict[str, Any]], monkeypatch: Any) -> Any:
    """The verifier's check of the version types, with ``rows`` as the source table."""
    docs = {r["id"]: {**r, "in_stock": r["stock"] > 0, "updated_at": None} for r in rows}
    monkeypatch.setattr(verify.truth, "search_documents", lambda _conn: docs)
    (check,) = [c for c in verify.compare(table, None) if "source versions" in c.name]  # type: ignore[arg-type]
    return check


def test_an_item_with_a_numeric_version_is_replaced_once(
    index_table: IndexTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the upgrade the first change of a product replaces its item whatever its numeric
    version (DynamoDB's ``<`` between an N and an S is false, so only ``attribute_type`` lets
    it): the diff removes "blue", the legacy pending entry settles "green", "red" comes back
    over its numeric removal marker, the postings it keeps ("teapot", "ceramic") are stated
    again, a deleted product is re-created. From then on versions compare as text: a replay is
    stale, and the verifier finds no number. (A late numeric write of the old release over an
    S is refused by DynamoDB, ``<`` across types being false; the emulator answers it with a
    500 instead, so the unit tests cover it with the fake, which evaluates as DynamoDB does.)"""
    _seed_legacy(index_table)
    check = _versions_check(index_table, [], monkeypatch)
    assert not check.ok and "7 numeric" in check.detail  # the verifier names them
    teapot = _row(1, "Teapot", "red ceramic", "11.00")
    teapot_value = _value("u", teapot, 7000, 6900)
    candle = _row(2, "Candle", "white wax")
    candle_value = _value("c", candle, 7100, 7000)

    harness = _harness(index_table)
    _send(harness, 1, teapot_value)
    _send(harness, 2, candle_value)
    harness.run_until_idle()
    assert_indexed(index_table, teapot)
    assert_indexed(index_table, candle)
    assert _item(index_table, 1)["version"] == {"S": _version_of(teapot_value)}
    for item in index_table.scan_all():  # no numeric version is left
        assert "S" in item["version"], item
    assert _versions_check(index_table, [teapot, candle], monkeypatch).ok

    _send(harness, 1, teapot_value)  # a redelivery or a replay: stale from now on
    harness.run_until_idle()
    harness.shutdown()
    assert_indexed(index_table, teapot, _version_of(teapot_value))
