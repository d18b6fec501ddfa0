"""``cdc search`` against the AWS emulator: a table filled through the sink, queried by the
command as an operator would run it (options from the environment, table and JSON output)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import typer
from cdc_events.testing import make_change
from consumer_runtime.testing import SinkHarness
from search_indexer import SearchIndexSink, decode
from search_indexer.cli import register
from typer.testing import CliRunner

TOPIC = "dbserver1.public.products"
ROWS = [
    (1, "Crème Espresso Cup", "Small ceramic cup", "12.50", 10),
    (2, "Classic Espresso Cups", "Stainless steel", "35.00", 3),
    (3, "Nordic Teapot", "Ceramic teapot for espresso lovers", "24.00", 0),
    (4, "Desk Lamp", "Matte steel lamp", "49.90", 7),
]


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """The ``cdc`` top level, as the CLI builds it."""

    register(app)
    return app


def test_cdc_search_full_text_id_and_name(index_table: Any, aws_env: dict[str, str]) -> None:
    harness = SinkHarness(SearchIndexSink(index_table), decode)
    for pid, name, desc, price, stock in ROWS:
        row = {
            "id": pid,
            "name": name,
            "description": desc,
            "price": Decimal(price),
            "stock": stock,
        }
        value = make_change("c", after=row, with_schema=True).value
        harness.produce(TOPIC, [value], key=orjson.dumps({"id": pid}))
    harness.run_until_idle()
    harness.shutdown()

    runner = CliRunner()
    env = {"DYNAMODB_TABLE": index_table.name, "COLUMNS": "200"}  # rich wraps at the width
    result = runner.invoke(
        _app(), ["search", "espresso cup", "--max-price", "30", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    hits = [orjson.loads(line) for line in result.output.splitlines()]
    assert [h["id"] for h in hits] == [1]
    assert Decimal(hits[0]["price"]) == Decimal("12.50") and hits[0]["name_matches"] == 2

    result = runner.invoke(_app(), ["search", "espresso"], env=env)
    assert result.exit_code == 0, result.output
    assert "Crème Espresso Cup" in result.output and "Nordic Teapot" in result.output
    # Name matches rank before description matches.
    assert result.output.index("Classic Espresso") < result.output.index("Nordic Teapot")

    result = runner.invoke(_app(), ["search", "--id", "4", "--json"], env=env)
    assert orjson.loads(result.output)["name"] == "Desk Lamp"
    result = runner.invoke(_app(), ["search", "--name", "creme esp", "--json"], env=env)
    assert [orjson.loads(line)["id"] for line in result.output.splitlines()] == [1]
    result = runner.invoke(
        _app(),
        ["search", "", "--min-price", "20", "--max-price", "50", "--in-stock", "--json"],
        env=env,
    )
    assert sorted(orjson.loads(line)["id"] for line in result.output.splitlines()) == [2, 4]
    result = runner.invoke(_app(), ["search", "x", "--min-price", "9", "--max-price", "1"], env=env)
    assert result.exit_code != 0 and "above" in result.output
