"""The API's failures in process (``conftest``: the real app over in-memory readers): keys and
scopes, unknown entities, bad parameters, readers down, unset or slow, each an RFC 9457
problem; and the routes without a key: health, metrics, the OpenAPI document, the dashboard,
the pipeline panel."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from consumer_runtime import RetryableError
from prometheus_client.parser import text_string_to_metric_families
from read_models import UnavailableError
from structlog.testing import capture_logs

from .conftest import ADMIN_KEY, READ_KEY, TIMEOUT_S, Readers, serve

pytestmark = pytest.mark.anyio

CUSTOMER = "/v1/stats/customers/1"


def _problem(resp: httpx.Response, status: int, slug: str | None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert set(body) >= {"type", "title", "status", "detail", "instance"}
    assert body["status"] == status and body["instance"] == resp.request.url.path
    assert body["type"] == ("about:blank" if slug is None else f"/problems/{slug}")
    assert body["title"] and body["detail"]
    return body


async def test_keys_in_either_header_and_the_scopes(client: httpx.AsyncClient) -> None:
    none = _problem(await client.get(CUSTOMER, headers={"X-API-Key": ""}), 401, "unauthorized")
    assert "X-API-Key" in none["detail"]
    wrong = await client.get(CUSTOMER, headers={"X-API-Key": "not-a-key-this-server-knows"})
    assert (
        _problem(wrong, 401, "unauthorized")["detail"] == "the API key is not known to this server"
    )
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    bearer = {"X-API-Key": "", "Authorization": f"Bearer {READ_KEY}"}
    assert (await client.get(CUSTOMER, headers=bearer)).status_code == 200
    bad_bearer = {"X-API-Key": "", "Authorization": "Bearer not-a-key-this-server-knows"}
    _problem(await client.get(CUSTOMER, headers=bad_bearer), 401, "unauthorized")

    forbidden = _problem(await client.get("/v1/admin/dead-letters"), 403, "forbidden")
    assert "'dash'" in forbidden["detail"] and "'admin'" in forbidden["detail"]
    assert (await client.get(CUSTOMER, headers={"X-API-Key": ADMIN_KEY})).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v1/stats/customers/99",
        "/v1/stats/products/99",
        "/v1/stats/users/nobody",
        "/v1/products/99",
        "/v1/products/99/availability",
        "/v1/events/public.products/8/history",
        "/v1/events/public.products/7/state?at=2026-11-30T00:00:00Z",
        "/v1/lake/reports/weekly_sales",
    ],
)
async def test_what_does_not_exist_is_a_404_problem(client: httpx.AsyncClient, path: str) -> None:
    _problem(await client.get(path), 404, "not-found")


async def test_an_unknown_path_or_method_is_a_plain_problem(client: httpx.AsyncClient) -> None:
    assert _problem(await client.get("/v1/nothing-here"), 404, None)["title"] == "Not Found"
    _problem(await client.post(CUSTOMER), 405, None)
    _problem(await client.get("/dashboard/assets/secrets.txt"), 404, None)


@pytest.mark.parametrize(
    ("path", "params", "where"),
    [
        ("/v1/stats/customers/abc", {}, "path.customer_id"),
        ("/v1/stats/customers/-1", {}, "path.customer_id"),
        ("/v1/stats/low-stock", {"limit": 1001}, "query.limit"),
        ("/v1/products/search", {"limit": 0}, "query.limit"),
        ("/v1/products/search", {"min_price": "-1"}, "query.min_price"),
        ("/v1/products/by-name", {}, "query.prefix"),
        ("/v1/events/public.products;drop/7/history", {}, "path.table"),
        ("/v1/lake/reports/Daily-Sales", {}, "path.name"),
        ("/v1/lake/reports/daily_sales", {"limit": 0}, "query.limit"),
        ("/v1/admin/dead-letters", {"status": "lost"}, "query.status"),
    ],
)
async def test_invalid_parameters_are_a_422_naming_each_one(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], where: str
) -> None:
    resp = await client.get(path, params=params, headers={"X-API-Key": ADMIN_KEY})
    body = _problem(resp, 422, "invalid-request")
    assert [".".join(map(str, e["loc"])) for e in body["errors"]] == [where]
    assert body["detail"].startswith(where + ":")


@pytest.mark.parametrize(
    ("path", "params", "detail"),
    [
        ("/v1/products/search", {"cursor": "garbage"}, "not one this API issued"),
        ("/v1/events/public.products/7/history", {"at": "2026-12-01T00:00:00"}, "time zone"),
        ("/v1/events/public.products/7/state", {"at": "2026-12-01T00:00:00"}, "time zone"),
        ("/v1/events/public.orders/7/history", {}, "key: give the key as a JSON object"),
        ("/v1/lake/reports/daily_sales", {"window_to": "2026-12-01T00:00:00"}, "time zone"),
    ],
)
async def test_requests_the_readers_cannot_answer_are_a_422(
    client: httpx.AsyncClient, path: str, params: dict[str, str], detail: str
) -> None:
    assert (
        detail in _problem(await client.get(path, params=params), 422, "invalid-request")["detail"]
    )


async def test_a_reader_down_is_a_503_problem(client: httpx.AsyncClient, readers: Readers) -> None:
    readers.stats.fail = UnavailableError("cannot reach the statistics database")
    body = _problem(await client.get(CUSTOMER), 503, "backend-unavailable")
    assert body["detail"] == "cannot reach the statistics database"
    # The runtime's RetryableError (the search index's DynamoDB outage) is one as well.
    readers.search.fail = RetryableError("DynamoDB throttled")
    body = _problem(await client.get("/v1/products/1"), 503, "backend-unavailable")
    assert body["detail"] == "the search backend is unavailable: DynamoDB throttled"
    readers.stats.fail = None
    assert (await client.get(CUSTOMER)).status_code == 200  # and back when it is


@pytest.mark.parametrize(
    ("path", "backend"),
    [
        (CUSTOMER, "stats"),
        ("/v1/stats/low-stock", "stats"),
        ("/v1/products/search", "search"),
        ("/v1/products/1/availability", "inventory"),
        ("/v1/events/t/1/history", "events"),
        ("/v1/lake/reports", "lake"),
    ],
)
async def test_a_backend_not_configured_is_a_503_naming_it(path: str, backend: str) -> None:
    async with serve(None) as api:
        body = _problem(await api.get(path), 503, "backend-unavailable")
    assert body["detail"] == f"the {backend} backend is not configured on this server"


async def test_a_reader_slower_than_the_budget_is_a_504_problem(readers: Readers) -> None:
    readers.lake.fail = TIMEOUT_S * 3  # seconds slept
    async with serve(readers) as api:
        body = _problem(await api.get("/v1/lake/reports"), 504, "backend-timeout")
        assert body["detail"] == f"the lake backend did not answer within {TIMEOUT_S:g} s"
        assert (await api.get(CUSTOMER)).status_code == 200  # the others still answer


async def test_an_unexpected_error_is_a_logged_500_problem_without_its_message(
    client: httpx.AsyncClient, readers: Readers
) -> None:
    readers.stats.fail = RuntimeError("secret internals")
    with capture_logs() as logs:  # also keeps the console renderer's slow traceback out
        body = _problem(await client.get(CUSTOMER), 500, None)
    assert "secret" not in body["detail"]
    [entry] = [e for e in logs if e["event"] == "unhandled error"]
    assert (entry["log_level"], entry["path"]) == ("error", CUSTOMER)


async def test_livez_and_readyz(readers: Readers) -> None:
    async with serve(readers) as api:
        assert (await api.get("/livez", headers={"X-API-Key": ""})).json() == {"status": "ok"}
        ready = await api.get("/readyz", headers={"X-API-Key": ""})
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": dict.fromkeys(("stats", "inventory", "events", "search", "lake"), "ok"),
        }
        readers.events.fail = UnavailableError("the event store is not there")
        readers.search.table.up = False
        readers.inventory.fail = RuntimeError("no credentials")
        failing = await api.get("/readyz")
        assert failing.status_code == 503
        checks = failing.json()["checks"]
        assert failing.json()["status"] == "not ready"
        assert checks["events"] == "failing: the event store is not there"
        assert checks["search"] == "failing: the search index table does not answer"
        assert checks["inventory"] == "failing: RuntimeError: no credentials"
        assert (checks["stats"], checks["lake"]) == ("ok", "ok")
    assert readers.stats.closed and readers.events.closed  # the app's backends closed


async def test_readyz_with_nothing_configured_is_ready() -> None:
    async with serve(None) as api:
        ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["checks"].values()) == {"not configured"}


def _requests(text: str, route: str, status: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "query_api_requests_total"
                and labels["route"] == route
                and labels["method"] == "GET"
                and labels["status"] == status
            ):
                return float(sample.value)
    return 0.0


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    template = "/v1/stats/customers/{customer_id}"
    before = (await client.get("/metrics")).text
    await client.get(CUSTOMER)
    await client.get("/v1/stats/customers/2")  # 404: the same route, another status
    await client.get("/v1/no-route-here")
    after = await client.get("/metrics", headers={"X-API-Key": ""})
    assert after.status_code == 200 and after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert _requests(text, template, "200") == _requests(before, template, "200") + 1
    assert _requests(text, template, "404") == _requests(before, template, "404") + 1
    assert _requests(text, "unmatched", "404") == _requests(before, "unmatched", "404") + 1
    assert 'query_api_backend_seconds_count{backend="stats",outcome="ok"}' in text


async def test_the_openapi_document_lists_every_v1_route(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json", headers={"X-API-Key": ""})).json()
    assert {p for p in doc["paths"] if p.startswith("/v1/")} == {
        "/v1/stats/customers/{customer_id}",
        "/v1/stats/products/{product_id}",
        "/v1/stats/users/{user_id}",
        "/v1/stats/low-stock",
        "/v1/products/search",
        "/v1/products/by-name",
        "/v1/products/by-price",
        "/v1/products/{product_id}",
        "/v1/products/{product_id}/availability",
        "/v1/events/{table}/{key}/history",
        "/v1/events/{table}/{key}/state",
        "/v1/lake/reports",
        "/v1/lake/reports/{name}",
        "/v1/admin/dead-letters",
        "/v1/pipeline",
    }
    assert "/dashboard" not in doc["paths"]
    responses = doc["paths"]["/v1/stats/customers/{customer_id}"]["get"]["responses"]
    assert {"200", "401", "403", "404", "422", "503", "504"} <= set(responses)


async def test_the_dashboard_page_needs_no_key(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard", headers={"X-API-Key": ""})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    script = await client.get("/dashboard/assets/dashboard.js", headers={"X-API-Key": ""})
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there now: a connection is refused at once


async def test_the_pipeline_panel_needs_a_key_and_reports_a_service_down(
    readers: Readers, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/metrics"
    monkeypatch.setenv("PIPELINE_METRICS_URLS", f"store={url}")
    async with serve(readers) as api:
        _problem(await api.get("/v1/pipeline", headers={"X-API-Key": ""}), 401, "unauthorized")
        resp = await api.get("/v1/pipeline")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["window_seconds"] == 30.0
    [service] = body["services"]
    assert (service["name"], service["metrics_url"]) == ("store", url)
    assert (service["up"], service["ready"], service["lag"]) == (False, False, None)
    assert service["error"] == "no answer: ConnectError"
