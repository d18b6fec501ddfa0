"""Every /v1 route's answer in process (``conftest``: the real app over in-memory readers):
its JSON shape, decimals as exact text and times as ISO-8601, the statistics' ETags and 304s,
and search pages chained through their cursors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from .conftest import ADMIN_KEY, T0, Readers

pytestmark = pytest.mark.anyio

KEY_OBJECT = '{"id": 7}'


def _ok(resp: Any) -> Any:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    return resp.json()


async def test_statistics_of_a_customer_a_product_and_a_user(client: httpx.AsyncClient) -> None:
    customer = _ok(await client.get("/v1/stats/customers/1"))
    assert customer == {
        "customer_id": 1,
        "known": True,
        "country": "FR",
        "orders_count": 3,
        "total_spent": "120.50",  # a Decimal, exact, as text
        "last_order_at": "2026-12-01T12:00:00Z",
    }
    assert _ok(await client.get("/v1/stats/products/3"))["price"] == "9.90"
    assert _ok(await client.get("/v1/stats/users/u1")) == {
        "user_id": "u1",
        "total_events": 12,
        "engagement_score": "0.75",
    }


async def test_low_stock_lists_the_readers_rows_up_to_the_limit(client: httpx.AsyncClient) -> None:
    items = _ok(await client.get("/v1/stats/low-stock"))["items"]
    assert [i["product_id"] for i in items] == [3, 4]
    assert all(i["low_stock"] for i in items)
    one = _ok(await client.get("/v1/stats/low-stock", params={"limit": 1}))["items"]
    assert [i["product_id"] for i in one] == [3]


async def test_statistics_carry_a_strong_etag_and_answer_304_while_unchanged(
    client: httpx.AsyncClient, readers: Readers
) -> None:
    first = await client.get("/v1/stats/customers/1")
    tag = first.headers["etag"]
    assert tag.startswith('"') and not tag.startswith("W/")
    assert first.headers["cache-control"] == "no-cache"
    again = await client.get("/v1/stats/customers/1", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag
    star = await client.get("/v1/stats/customers/1", headers={"If-None-Match": "*"})
    assert star.status_code == 304
    weak = await client.get("/v1/stats/customers/1", headers={"If-None-Match": f'"x", W/{tag}'})
    assert weak.status_code == 304

    readers.stats.rows["customer", 1]["orders_count"] = 4  # the read model moved on
    changed = await client.get("/v1/stats/customers/1", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.json()["orders_count"] == 4
    assert changed.headers["etag"] != tag
    other = (await client.get("/v1/stats/products/3")).headers["etag"]
    assert other not in (tag, changed.headers["etag"])


async def _pages(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> list[list[int]]:
    """The ids of every page, following ``next_cursor`` to the end."""
    pages: list[list[int]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = _ok(await client.get(path, params=query))
        assert set(page) == {"items", "next_cursor"}
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "the cursors do not come to an end"


async def test_search_pages_chain_to_the_end_without_duplicates(
    client: httpx.AsyncClient, readers: Readers
) -> None:
    cups = [p.id for p in readers.search.products if p.name.startswith("Cup")]
    assert len(cups) == 8
    pages = await _pages(client, "/v1/products/search", {"q": "cup", "limit": 3})
    assert pages == [cups[0:3], cups[3:6], cups[6:8]]
    # Each page reads the answer up to one past its end (to know whether more follow).
    assert [c[1][4] for c in readers.search.calls] == [4, 7, 10]

    first = _ok(await client.get("/v1/products/search", params={"q": "cup", "limit": 8}))
    assert [i["id"] for i in first["items"]] == cups and first["next_cursor"] is None
    item = first["items"][0]
    assert item == {
        "id": 1,
        "name": "Cup 1",
        "description": "a cup 1",
        "price": "1.00",
        "stock": 1,
        "in_stock": True,
        "updated_at": "2026-12-01T12:00:00Z",
        "version": "v1",
        "name_matches": 0,
        "description_matches": 0,
    }


async def test_a_search_filters_by_price_and_stock(
    client: httpx.AsyncClient, readers: Readers
) -> None:
    params = {"q": "", "min_price": "3", "max_price": "9.5", "in_stock": "true"}
    items = _ok(await client.get("/v1/products/search", params=params))["items"]
    assert [i["id"] for i in items] == [4, 5, 7, 8]  # 3, 6 and 9 are out of stock
    assert readers.search.calls[-1][1][:4] == ("", Decimal(3), Decimal("9.5"), True)


async def test_by_name_pages_by_prefix_and_finds_an_exact_name(client: httpx.AsyncClient) -> None:
    pages = await _pages(client, "/v1/products/by-name", {"prefix": "mug", "limit": 2})
    assert pages == [[14, 2], [7, 9]]  # by name: "Mug 14" < "Mug 2" < "Mug 7" < "Mug 9"
    exact = _ok(await client.get("/v1/products/by-name", params={"prefix": "Mug 2", "exact": True}))
    assert [i["id"] for i in exact["items"]] == [2] and exact["next_cursor"] is None


async def test_by_price_pages_a_price_range_cheapest_first(client: httpx.AsyncClient) -> None:
    pages = await _pages(
        client, "/v1/products/by-price", {"min_price": "2", "max_price": "11", "limit": 4}
    )
    assert pages == [[2, 3, 4, 5], [6, 7, 8, 9], [10, 11]]


async def test_a_cursor_belongs_to_its_query(client: httpx.AsyncClient) -> None:
    page = _ok(await client.get("/v1/products/search", params={"q": "cup", "limit": 3}))
    # The same query with another page size continues from the cursor's position ...
    rest = await client.get(
        "/v1/products/search", params={"q": "cup", "cursor": page["next_cursor"]}
    )
    assert [i["id"] for i in _ok(rest)["items"]] == [6, 8, 10, 12, 13]
    # ... another query does not take it.
    other = await client.get(
        "/v1/products/search", params={"q": "mug", "cursor": page["next_cursor"]}
    )
    assert other.status_code == 422
    assert "another query" in other.json()["detail"]


async def test_one_product_and_its_availability(client: httpx.AsyncClient) -> None:
    product = _ok(await client.get("/v1/products/2"))
    assert (product["id"], product["name"], product["price"]) == (2, "Mug 2", "2.00")
    assert _ok(await client.get("/v1/products/3/availability")) == {
        "product_id": 3,
        "stock": 2,
        "low_stock": True,
        "deleted": False,
        "available": True,
        "version": "v3",
    }


async def test_a_rows_history_and_its_state_at_a_time(client: httpx.AsyncClient) -> None:
    base = "/v1/events/public.products/7"
    history = _ok(await client.get(f"{base}/history"))
    assert history["table"] == "public.products" and history["key"] == {"id": 7}
    assert [(e["event_id"], e["op"]) for e in history["events"]] == [("e1", "c"), ("e2", "u")]
    assert history["events"][1]["after"] == {"id": 7, "stock": 4}
    assert history["events"][0]["kafka_offset"] == 1
    early = _ok(await client.get(f"{base}/history", params={"at": "2026-12-01T12:10:00Z"}))
    assert [e["event_id"] for e in early["events"]] == ["e1"]
    # A JSON object names the key as well (URL-encoded), without asking for the key columns.
    by_object = _ok(await client.get(f"/v1/events/public.products/{quote(KEY_OBJECT)}/history"))
    assert by_object["events"] == history["events"]

    now = _ok(await client.get(f"{base}/state"))
    assert (now["state"], now["events"], now["key"]) == ({"id": 7, "stock": 4}, 2, {"id": 7})
    assert now["at"] > T0.isoformat()
    then = _ok(await client.get(f"{base}/state", params={"at": "2026-12-01T12:10:00+00:00"}))
    assert (then["state"], then["events"]) == ({"id": 7, "stock": 5}, 1)
    assert then["at"] == "2026-12-01T12:10:00+00:00"


async def test_the_lakes_report_tables_listed_and_read(
    client: httpx.AsyncClient, readers: Readers
) -> None:
    assert _ok(await client.get("/v1/lake/reports")) == {"tables": ["daily_sales"]}
    report = _ok(await client.get("/v1/lake/reports/daily_sales"))
    assert report == {
        "table": "daily_sales",
        "snapshot_id": 42,
        "columns": ["window_start", "revenue"],
        "rows": [
            {"window_start": "2026-12-01T12:00:00Z", "revenue": "10.00"},
            {"window_start": "2026-12-02T12:00:00Z", "revenue": "12.50"},
        ],
    }
    params = {"window_from": "2026-12-01T00:00:00Z", "window_to": "2026-12-03T00:00:00Z"}
    one = _ok(await client.get("/v1/lake/reports/daily_sales", params={**params, "limit": 1}))
    assert len(one["rows"]) == 1
    assert readers.lake.reads[-1] == {
        "from": T0.replace(hour=0),
        "to": T0.replace(day=3, hour=0),
        "limit": 1,
    }


async def test_the_dead_letter_summary_for_an_admin_key(
    client: httpx.AsyncClient, readers: Readers
) -> None:
    admin = {"X-API-Key": ADMIN_KEY}
    summary = _ok(await client.get("/v1/admin/dead-letters", headers=admin))
    assert summary["counts"] == [
        {"error_code": "bad_json", "status": "new", "rows": 2},
        {"error_code": "schema", "status": "discarded", "rows": 1},
    ]
    assert [r["id"] for r in summary["recent"]] == [2, 1]
    recent = summary["recent"][0]
    assert (recent["value_size"], recent["key_size"], recent["error_code"]) == (10, 1, "bad_json")
    assert "value" not in recent  # sizes only, never the payload

    params = {"status": "discarded", "topic": "t", "code": "schema", "recent": 0}
    only = _ok(await client.get("/v1/admin/dead-letters", headers=admin, params=params))
    assert only == {"counts": [{"error_code": "schema", "status": "discarded", "rows": 1}],
                    "recent": []}  # fmt: skip
    selection, limit = readers.events.selections[-1]
    assert (selection.status, selection.topic, selection.code, limit) == (
        "discarded",
        "t",
        "schema",
        None,  # recent=0 reads no rows, only the counts
    )
