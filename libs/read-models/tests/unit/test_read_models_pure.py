"""The pure pieces of the read library: the key hash's formula, the lake's configuration."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from read_models.events import key_hash, key_json
from read_models.lake import CatalogConfig
from read_models.search import price_buckets_between


@pytest.mark.unit
def test_a_key_is_stored_as_sorted_normalised_json_and_hashed_with_its_table() -> None:
    text = key_json({"b": Decimal("1.50"), "a": 1})
    assert text == '{"a":1,"b":"1.50"}'
    digest = hashlib.blake2b(b"orders\x1f" + text.encode(), digest_size=8).digest()
    assert key_hash("orders", text) == int.from_bytes(digest, "big", signed=True)
    assert key_hash("orders", None) is None


@pytest.mark.unit
def test_the_lake_config_gives_the_sql_catalog_its_database_and_an_emulator_path_style() -> None:
    config = CatalogConfig(
        uri="postgresql+psycopg2://u:p@h/db",
        warehouse="s3://lake/warehouse",
        endpoint_url="http://localhost:5000",
        region="us-east-1",
    )
    props = config.properties()
    assert props["uri"] == "postgresql+psycopg2://u:p@h/db"
    assert props["s3.path-style-access"] == "true"
    assert "u:p" not in repr(config)
    with pytest.raises(ValueError, match="s3://"):
        CatalogConfig(uri="x", warehouse="lake")


@pytest.mark.unit
def test_a_price_range_reads_only_the_buckets_that_can_hold_it() -> None:
    assert price_buckets_between(Decimal(20), Decimal(29)) == ["P2-2"]
    assert price_buckets_between(None, Decimal("0.5")) == ["P0-0"]
