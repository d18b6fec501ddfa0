"""What the API builds from its settings before it serves: the readers (``Backends.from_settings``;
nothing connects until a request), the lake's catalog, the key file and its reloading, and the
JSON forms of the values the readers return."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr
from query_api import auth
from query_api.auth import KeyStore, Unauthorized
from query_api.backends import Backends
from query_api.responses import json_body
from query_api.settings import Settings
from read_models.events import EventStoreReader
from read_models.lake import LakeReports
from read_models.search import ProductSearch
from read_models.stats import InventoryReader, StatsReader

UNSET = {
    "database_url": None,
    "event_store_url": None,
    "dynamodb_table": None,
    "inventory_table": None,
    "lake_catalog_uri": None,
    "lake_warehouse": None,
    "s3_bucket": None,
}


def test_every_backend_is_built_from_its_settings() -> None:
    settings = Settings(
        **{
            **UNSET,
            "database_url": SecretStr("postgresql://u:p@127.0.0.1:1/stats"),
            "event_store_url": SecretStr("postgresql://u:p@127.0.0.1:1/events"),
            "dynamodb_table": "product-search-index",
            "inventory_table": "inventory-realtime",
            "aws_endpoint_url": "http://127.0.0.1:1",
            "aws_region": "eu-west-1",
            "lake_catalog_uri": SecretStr("postgresql+psycopg2://u:p@127.0.0.1:1/lake"),
            "s3_bucket": "lake",
        },
        backend_timeout_s=0.5,
        backend_threads=3,
    )
    found = Backends.from_settings(settings)
    try:
        assert isinstance(found.stats, StatsReader) and isinstance(found.events, EventStoreReader)
        assert isinstance(found.search, ProductSearch)
        assert isinstance(found.inventory, InventoryReader)
        assert found.inventory.table == "inventory-realtime"
        assert isinstance(found.lake, LakeReports)
        assert found.lake.config.warehouse == "s3://lake/warehouse"
        assert found.lake.config.endpoint_url == "http://127.0.0.1:1"
        assert (found.timeout_s, found.executor._max_workers) == (0.5, 3)
        assert found.stats.engine.pool.size() == settings.db_pool_size  # DB_POOL_SIZE
        assert all(ping is not None for ping in found.ping_functions().values())
    finally:
        found.close()


def test_a_backend_without_settings_is_not_served() -> None:
    found = Backends.from_settings(Settings(**UNSET))
    try:
        assert (found.stats, found.events, found.search, found.inventory, found.lake) == (
            None,
            None,
            None,
            None,
            None,
        )
        assert set(found.ping_functions().values()) == {None}
    finally:
        found.close()


def test_the_lakes_catalog_from_the_settings() -> None:
    assert Settings(**UNSET).catalog_config() is None  # sql without its database: no lake
    uri = SecretStr("postgresql+psycopg2://u:p@h/lake")
    assert Settings(**{**UNSET, "lake_catalog_uri": uri}).catalog_config() is None  # nowhere
    explicit = Settings(
        **{**UNSET, "lake_catalog_uri": uri, "lake_warehouse": "s3://other/wh"},
        lake_namespace="reports",
    ).catalog_config()
    assert explicit is not None
    assert (explicit.warehouse, explicit.namespace, explicit.uri) == (
        "s3://other/wh",
        "reports",
        "postgresql+psycopg2://u:p@h/lake",
    )
    glue = Settings(
        **{**UNSET, "s3_bucket": "lake"}, lake_catalog="glue", aws_region="eu-west-1"
    ).catalog_config()
    assert glue is not None and (glue.kind, glue.region) == ("glue", "eu-west-1")


KEY_A = "first-key-0123456789abcdef"
KEY_B = "second-key-0123456789abcdef"


def test_the_key_file_is_read_again_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "_RECHECK_S", 0.0)
    path = tmp_path / "keys"
    path.write_text(f"dash:read:{KEY_A}\n")
    store = KeyStore(path, f"ops:admin:{KEY_B}")
    assert store.authenticate(KEY_A).name == "dash"
    assert store.authenticate(KEY_B).scope == "admin"  # API_KEYS adds to the file

    path.write_text(f"dash2:read:{KEY_B[::-1]}\n")
    os.utime(path, (1, 1))  # a new modification time, whatever the clock's resolution
    with pytest.raises(Unauthorized, match="not known"):
        store.authenticate(KEY_A)  # rotated out
    assert store.authenticate(KEY_B[::-1]).name == "dash2"

    path.write_text("broken line\n")  # an invalid file keeps the keys in force
    os.utime(path, (2, 2))
    assert store.authenticate(KEY_B[::-1]).name == "dash2"
    path.unlink()  # so does a file gone: only API_KEYS' remain
    assert store.authenticate(KEY_B).name == "ops"
    with pytest.raises(Unauthorized, match="not known"):
        store.authenticate(KEY_B[::-1])
    with pytest.raises(Unauthorized, match="send an API key"):
        store.authenticate(None)


def test_an_invalid_key_file_at_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("dash:write:" + KEY_A)
    with pytest.raises(ValueError, match="scope 'write'"):
        KeyStore(path)
    assert len(KeyStore(tmp_path / "absent").ring) == 0


def test_values_the_readers_return_have_a_json_form() -> None:
    assert json_body({"d": date(2026, 12, 1), "b": b"\x01\xff", "m": memoryview(b"\x02")}) == (
        b'{"d":"2026-12-01","b":"01ff","m":"02"}'
    )
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_body({"x": object()})


def test_the_heap_built_at_start_is_frozen_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full collection of the started server's heap (botocore's models, pyiceberg,
    SQLAlchemy) took 120 ms, paused every request in flight and made the statistics read's
    p99 at 800 requests a second 150 ms; the server freezes that heap before it serves."""
    import gc

    from query_api import server

    seen: dict[str, int] = {}

    def serve(app: object, **_: object) -> None:
        seen["frozen"] = gc.get_freeze_count()

    monkeypatch.setattr(server.uvicorn, "run", serve)
    monkeypatch.setattr(server, "configure_logging", lambda *_, **__: None)  # global otherwise
    monkeypatch.setenv("API_KEYS", "test:read:0123456789abcdef0123")
    for name in ("DATABASE_URL", "EVENT_STORE_URL", "DYNAMODB_TABLE", "INVENTORY_TABLE"):
        monkeypatch.delenv(name, raising=False)
    try:
        assert server.main() == 0
    finally:
        gc.unfreeze()
    assert seen["frozen"] > 10_000
