from __future__ import annotations

import json
from pathlib import Path

from search_indexer import table_definition

REPO = Path(__file__).resolve().parents[4]


def test_packaged_table_definition_equals_the_canonical_one() -> None:
    canonical = REPO / "deploy" / "dynamodb" / "product-search-index.json"
    packaged = (
        REPO
        / "services"
        / "search-indexer"
        / "src"
        / "search_indexer"
        / "product-search-index.json"
    )
    assert json.loads(packaged.read_text()) == json.loads(canonical.read_text())
    assert table_definition() == json.loads(canonical.read_text())


def test_table_name_can_be_overridden() -> None:
    assert table_definition("idx-test")["TableName"] == "idx-test"
