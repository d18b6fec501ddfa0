"""``QueryApiClient``: the query API's conventions from a client's side.

- the key goes in ``X-API-Key`` on every request (one ``httpx.Client``: pooled connections);
- statistics are fetched conditionally: the last body and its ``ETag`` are kept per URL and
  sent back as ``If-None-Match``, so an unchanged statistic costs a ``304`` with no body;
- a search is followed page by page through ``next_cursor`` until it is null;
- an error answer (``application/problem+json``, RFC 9457) is raised as ``Problem`` with its
  ``status``, ``type`` and ``detail``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

__all__ = ["Problem", "QueryApiClient"]


class Problem(Exception):
    """An RFC 9457 problem the API answered."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(f"{body.get('status')} {body.get('title')}: {body.get('detail')}")
        self.status = int(body.get("status", 0))
        self.type = str(body.get("type", "about:blank"))
        self.detail = str(body.get("detail", ""))
        self.body = body


class QueryApiClient:
    """A client of the API at ``base_url`` with ``api_key``."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"X-API-Key": api_key}, timeout=timeout)
        self._cache: dict[str, tuple[str, dict[str, Any]]] = {}
        #: how many conditional reads the server answered with 304
        self.not_modified = 0

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> QueryApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, **params: Any) -> Any:
        resp = self.http.get(path, params={k: v for k, v in params.items() if v is not None})
        if resp.headers.get("content-type", "").startswith("application/problem+json"):
            raise Problem(resp.json())
        resp.raise_for_status()
        return resp.json()

    def statistics(self, kind: str, key: int | str) -> dict[str, Any]:
        """``kind``: ``customers``, ``products`` or ``users``; the last body if unchanged."""
        path = f"/v1/stats/{kind}/{key}"
        cached = self._cache.get(path)
        headers = {"If-None-Match": cached[0]} if cached else {}
        resp = self.http.get(path, headers=headers)
        if resp.status_code == 304 and cached is not None:
            self.not_modified += 1
            return cached[1]
        if resp.headers.get("content-type", "").startswith("application/problem+json"):
            raise Problem(resp.json())
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        self._cache[path] = (resp.headers["ETag"], body)
        return body

    def search(
        self, q: str = "", *, page_size: int = 20, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Every hit of a full-text search (``min_price``, ``max_price``, ``in_stock``), page
        after page."""
        yield from self._pages("/v1/products/search", q=q, limit=page_size, **filters)

    def by_name(self, prefix: str, *, page_size: int = 20) -> Iterator[dict[str, Any]]:
        yield from self._pages("/v1/products/by-name", prefix=prefix, limit=page_size)

    def _pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self._get(path, **params, cursor=cursor)
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def availability(self, product_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._get(f"/v1/products/{product_id}/availability")
        return result

    def history(self, table: str, key: int | str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self._get(f"/v1/events/{table}/{key}/history")["events"]
        return events

    def report(self, name: str, **window: Any) -> list[dict[str, Any]]:
        """A lake report's rows (``window_from``, ``window_to``, ``limit``)."""
        rows: list[dict[str, Any]] = self._get(f"/v1/lake/reports/{name}", **window)["rows"]
        return rows
