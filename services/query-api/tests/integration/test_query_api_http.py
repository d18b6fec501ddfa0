"""The API over real HTTP (httpx against uvicorn on a port) on the embedded stack: every answer
compared with the read library called directly on the same seeded read models."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from pydantic import SecretStr
from read_models.events import Selection

from .conftest import ADMIN_KEY, READ_KEY, Stack, serve

pytestmark = pytest.mark.integration

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}


def _problem(resp: httpx.Response, status: int, kind: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert set(body) >= PROBLEM_MEMBERS
    assert body["status"] == status and body["instance"] == resp.request.url.path
    if kind is not None:
        assert body["type"] == f"/problems/{kind}"
    return body


def _json(value: Any) -> Any:
    """A value as the API renders it (decimals as text, times ISO-8601)."""
    from query_api.responses import json_body

    return orjson.loads(json_body(value))


def test_keys_and_scopes(server: str) -> None:
    url = "/v1/stats/customers/1"
    with httpx.Client(base_url=server) as anon:
        _problem(anon.get(url), 401, "unauthorized")
        wrong = anon.get(url, headers={"X-API-Key": "not-a-known-key-at-all"})
        _problem(wrong, 401, "unauthorized")
        assert wrong.headers["www-authenticate"].startswith("Bearer")
        assert anon.get(url, headers={"Authorization": f"Bearer {READ_KEY}"}).status_code == 200
        admin = "/v1/admin/dead-letters"
        _problem(anon.get(admin, headers={"X-API-Key": READ_KEY}), 403, "forbidden")
        assert anon.get(admin, headers={"X-API-Key": ADMIN_KEY}).status_code == 200
        assert anon.get(url, headers={"X-API-Key": ADMIN_KEY}).status_code == 200  # admin reads
        for open_path in ("/livez", "/readyz", "/metrics", "/openapi.json", "/docs"):
            assert anon.get(open_path).status_code == 200, open_path


def test_problems_for_unknown_entities_bad_parameters_and_paths(client: httpx.Client) -> None:
    _problem(client.get("/v1/stats/customers/999999"), 404, "not-found")
    _problem(client.get("/v1/stats/products/999999"), 404, "not-found")
    _problem(client.get("/v1/products/999999"), 404, "not-found")
    invalid = _problem(client.get("/v1/stats/customers/abc"), 422, "invalid-request")
    assert invalid["errors"][0]["loc"] == ["path", "customer_id"]
    _problem(client.get("/v1/products/search", params={"limit": 0}), 422, "invalid-request")
    _problem(client.get("/v1/products/search", params={"cursor": "garbage"}), 422)
    _problem(client.get("/v1/lake/reports/no_such_report"), 404, "not-found")
    unknown = _problem(client.get("/v1/nothing-here"), 404)
    assert unknown["type"] == "about:blank"


def test_statistics_equal_the_reader_and_low_stock(client: httpx.Client, stack: Stack) -> None:
    for kind, path, key in (
        ("customer", "customers", 1),
        ("product", "products", 3),
        ("user", "users", "u1"),
    ):
        resp = client.get(f"/v1/stats/{path}/{key}")
        assert resp.status_code == 200
        assert resp.json() == _json(stack.stats.get(kind, key))
    low = client.get("/v1/stats/low-stock", params={"limit": 50}).json()["items"]
    assert low == _json(stack.stats.low_stock(50))
    assert low and all(r["low_stock"] and r["stock"] < 10 for r in low)


def test_etags_304_and_a_new_tag_when_the_data_changes(client: httpx.Client, stack: Stack) -> None:
    url = "/v1/stats/products/5"
    first, second = client.get(url), client.get(url)
    tag = first.headers["etag"]
    assert tag == second.headers["etag"] and tag.startswith('"') and first.content == second.content
    cached = client.get(url, headers={"If-None-Match": tag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == tag
    product = next(p for p in stack.products if p["id"] == 5)
    stack.change("products", product | {"stock": product["stock"] + 100})
    changed = client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert changed.json()["stock"] == product["stock"] + 100


def _all_pages(client: httpx.Client, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        page = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= params["limit"]
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize(
    ("path", "params", "direct"),
    [
        ("/v1/products/search", {"q": "espresso", "limit": 6},
         lambda s: s.search("espresso", limit=500)),
        ("/v1/products/search", {"q": "cup mug", "in_stock": True, "limit": 3},
         lambda s: s.search("cup mug", in_stock=True, limit=500)),
        ("/v1/products/by-price", {"min_price": "20", "max_price": "150", "limit": 7},
         lambda s: s.search("", Decimal(20), Decimal(150), limit=500)),
        ("/v1/products/by-name", {"prefix": "kettle", "limit": 2},
         lambda s: s.by_name("kettle", limit=500)),
    ],
)  # fmt: skip
def test_pages_together_equal_the_search_called_directly(
    client: httpx.Client, stack: Stack, path: str, params: dict[str, Any], direct: Any
) -> None:
    pages = _all_pages(client, path, params)
    expected = [h.to_dict() for h in direct(stack.search)]
    assert len(expected) > params["limit"], "more than one page"
    assert pages == _json(expected)
    assert len({p["id"] for p in pages}) == len(pages)


def test_a_cursor_of_another_query_is_refused(client: httpx.Client) -> None:
    first = client.get("/v1/products/search", params={"q": "espresso", "limit": 2}).json()
    other = client.get(
        "/v1/products/search", params={"q": "kettle", "limit": 2, "cursor": first["next_cursor"]}
    )
    assert "another query" in _problem(other, 422, "invalid-request")["detail"]


def test_a_product_and_its_availability(client: httpx.Client, stack: Stack) -> None:
    assert client.get("/v1/products/7").json() == _json(stack.search.get(7).to_dict())  # type: ignore[union-attr]
    available = client.get("/v1/products/3/availability")
    assert available.status_code == 200
    assert available.json() == stack.inventory.availability(3).to_dict()  # type: ignore[union-attr]
    _problem(client.get("/v1/products/424242/availability"), 404, "not-found")


def test_history_and_state_equal_the_event_store(client: httpx.Client, stack: Stack) -> None:
    history = client.get("/v1/events/orders/7/history")
    assert history.status_code == 200
    events = stack.events.history("orders", {"id": 7})
    assert history.json()["events"] == _json([e.to_dict() for e in events])
    assert [e["after"]["status"] for e in history.json()["events"]] == ["new", "paid", "shipped"]
    at = "2026-01-01T00:01:30Z"
    key = quote('{"id": 7}')
    state = client.get(f"/v1/events/orders/{key}/state", params={"at": at})
    row, count = stack.events.state("orders", {"id": 7}, events[1].event_time)
    assert state.json()["state"] == _json(row) and state.json()["state"]["status"] == "paid"
    assert state.json()["events"] == count == 2
    _problem(client.get("/v1/events/orders/424242/history"), 404, "not-found")
    _problem(client.get("/v1/events/orders/7/state", params={"at": "2026-01-01T00:00:00"}), 422)


def test_lake_reports_equal_the_iceberg_tables(client: httpx.Client, stack: Stack) -> None:
    listed = client.get("/v1/lake/reports").json()["tables"]
    assert listed == stack.lake.tables() and "sales" in listed
    sales = client.get("/v1/lake/reports/sales").json()
    table = stack.lake.catalog().load_table((stack.lake.config.namespace, "sales"))
    direct = table.scan().to_arrow().sort_by([("window_start", "ascending")]).to_pylist()
    assert sales["rows"] == _json(direct) and len(direct) > 2
    assert sales["snapshot_id"] == table.current_snapshot().snapshot_id
    window = {"window_from": "2026-01-01T00:05:00Z", "window_to": "2026-01-01T00:15:00Z"}
    some = client.get("/v1/lake/reports/sales", params=window).json()["rows"]
    assert some and some == [
        r for r in _json(direct) if "2026-01-01T00:05" <= r["window_start"] < "2026-01-01T00:15"
    ]
    assert client.get("/v1/lake/reports/sales", params={"limit": 1}).json()["rows"] == _json(
        direct[:1]
    )


def test_dead_letter_summary_for_admins(server: str, stack: Stack) -> None:
    with httpx.Client(base_url=server, headers={"X-API-Key": ADMIN_KEY}) as admin:
        body = admin.get("/v1/admin/dead-letters").json()
    counts = stack.events.dead_letter_counts(Selection())
    assert [(c["error_code"], c["status"], c["rows"]) for c in body["counts"]] == counts
    assert sum(n for _, _, n in counts) == 2 and len(body["recent"]) == 2


def test_readiness_and_metrics(server: str, client: httpx.Client) -> None:
    ready = httpx.get(f"{server}/readyz").json()
    assert ready["status"] == "ready"
    assert set(ready["checks"].values()) == {"ok"}
    client.get("/v1/stats/customers/1")
    text = httpx.get(f"{server}/metrics").text
    route = 'route="/v1/stats/customers/{customer_id}"'
    assert f'query_api_requests_total{{method="GET",{route},status="200"}}' in text
    assert 'query_api_backend_seconds_count{backend="stats",outcome="ok"}' in text
    spec = httpx.get(f"{server}/openapi.json").json()
    assert "/v1/products/search" in spec["paths"]
    assert "application/problem+json" in str(spec["paths"]["/v1/stats/customers/{customer_id}"])


def test_an_unreachable_backend_is_503_and_a_slow_one_504(stack: Stack) -> None:
    from devstack import free_port

    down = stack.settings.model_copy(
        update={
            "api_port": free_port(),
            "database_url": SecretStr(f"postgresql://u:p@127.0.0.1:{free_port()}/none"),
            "inventory_table": None,
        }
    )
    with serve(down) as url, httpx.Client(base_url=url, headers={"X-API-Key": READ_KEY}) as c:
        _problem(c.get("/v1/stats/customers/1"), 503, "backend-unavailable")
        not_configured = _problem(c.get("/v1/products/1/availability"), 503)
        assert "not configured" in not_configured["detail"]
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["inventory"] == "not configured"
        assert ready.json()["checks"]["stats"].startswith("failing")
    slow = stack.settings.model_copy(update={"api_port": free_port(), "backend_timeout_s": 0.001})
    with serve(slow) as url, httpx.Client(base_url=url, headers={"X-API-Key": READ_KEY}) as c:
        _problem(c.get("/v1/lake/reports/sales"), 504, "backend-timeout")


def test_connections_the_database_dropped_fail_once_each_and_leave_the_pool(
    stack: Stack, sink_postgres: Any
) -> None:
    """The statistics are read on pooled connections with no ping first: when PostgreSQL drops
    them (a restart, a failover), each fails one read (503, never a 500) and is discarded, so
    the pool heals without a restart of the API."""
    from devstack import free_port

    pool = 3
    settings = stack.settings.model_copy(
        update={"api_port": free_port(), "db_pool_size": pool, "db_max_overflow": 0}
    )
    path = "/v1/stats/customers/1"
    admin = sink_postgres.connect()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT clock_timestamp()")
        started = cur.fetchone()[0]
    with serve(settings) as url, httpx.Client(base_url=url, headers={"X-API-Key": READ_KEY}) as c:
        for _ in range(2 * pool):
            assert c.get(path).status_code == 200
        with admin.cursor() as cur:
            # Only this server's connections (opened since the test began): the module's
            # shared server keeps its own.
            cur.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'query-api' AND backend_start >= %s",
                (started,),
            )
            assert cur.fetchone()[0] >= 1  # the API held pooled connections
        admin.close()
        statuses = [c.get(path).status_code for _ in range(3 * pool)]
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.count(503) <= pool, statuses  # each dropped connection fails once
        assert statuses[-pool:] == [200] * pool, statuses  # then the pool is whole again


def test_the_example_client_follows_pages_reuses_etags_and_raises_problems(
    server: str, stack: Stack
) -> None:
    from query_api_client import Problem, QueryApiClient

    with QueryApiClient(server, READ_KEY) as api:
        hits = list(api.search("espresso", page_size=4))
        assert hits == _json([h.to_dict() for h in stack.search.search("espresso", limit=500)])
        first = api.statistics("customers", 2)
        assert api.statistics("customers", 2) == first and api.not_modified == 1
        with pytest.raises(Problem) as caught:
            api.availability(424242)
        assert caught.value.status == 404 and caught.value.type == "/problems/not-found"
