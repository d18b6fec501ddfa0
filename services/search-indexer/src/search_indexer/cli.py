"""``cdc search``: the search indexer's operator command, named by the service's
descriptor (``service.SERVICE.commands``; the CLI never imports a service by name).

    cdc search "espresso cup" --max-price 30
    cdc search --id 42
    cdc search --name "classic esp"        # by-name prefix (--exact for equality)
    cdc search "" --min-price 20 --max-price 50 --in-stock --json
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import orjson
import typer
from read_models.search import InvalidQueryError, ProductSearch, SearchHit
from rich.console import Console
from rich.table import Table

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("search")(search_command)


def search_command(
    query: Annotated[str, typer.Argument(help="words to find (all must match)")] = "",
    min_price: Annotated[Decimal | None, typer.Option(help="lowest price")] = None,
    max_price: Annotated[Decimal | None, typer.Option(help="highest price")] = None,
    in_stock: Annotated[
        bool | None, typer.Option("--in-stock/--out-of-stock", help="only (not) in stock")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="most results shown")] = 20,
    product_id: Annotated[int | None, typer.Option("--id", help="look one product up")] = None,
    name: Annotated[str | None, typer.Option(help="by-name prefix look-up")] = None,
    exact: Annotated[bool, typer.Option(help="with --name: the whole name")] = False,
    table: Annotated[str, typer.Option(envvar="DYNAMODB_TABLE")] = "product-search-index",
    endpoint_url: Annotated[str | None, typer.Option(envvar="AWS_ENDPOINT_URL")] = None,
    region: Annotated[str | None, typer.Option(envvar="AWS_REGION")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """Search the product index (full text, --id, or --name prefix)."""
    index = ProductSearch.connect(table, region=region, endpoint_url=endpoint_url)
    try:
        if product_id is not None:
            hit = index.get(product_id)
            hits = [] if hit is None else [hit]
        elif name is not None:
            hits = index.by_name(name, exact=exact, limit=limit)
        else:
            hits = index.search(query, min_price, max_price, in_stock, limit)
    except InvalidQueryError as exc:
        raise typer.BadParameter(str(exc)) from None
    _print(hits, as_json)


def _print(hits: list[SearchHit], as_json: bool) -> None:
    console = Console()
    if as_json:
        for hit in hits:
            console.out(orjson.dumps(hit.to_dict()).decode(), highlight=False)
        return
    if not hits:
        console.print("[yellow]no products found[/yellow]")
        return
    view = Table(show_lines=False)
    for column, justify in (("id", "right"), ("name", "left"), ("price", "right")):
        view.add_column(column, justify=justify)  # type: ignore[arg-type]
    view.add_column("stock", justify="right")
    view.add_column("matches (name/desc)", justify="center")
    view.add_column("description", overflow="ellipsis", max_width=48, no_wrap=True)
    for hit in hits:
        view.add_row(
            str(hit.id),
            hit.name,
            format(hit.price, "f"),
            str(hit.stock) if hit.in_stock else "[red]0[/red]",
            f"{hit.name_matches}/{hit.description_matches}",
            hit.description,
        )
    console.print(view)
