"""RFC 9457 problem details (pure): every error this API answers is an
``application/problem+json`` object with ``type``, ``title``, ``status``, ``detail`` and
``instance`` (the request's path), plus extension members where they help (``errors`` of a
validation failure).

``type`` is a URI reference naming the kind of problem, relative to the API
(``/problems/<slug>``, listed in the README); a plain HTTP error with nothing more to say uses
``about:blank`` and the status's phrase as its title, as the RFC prescribes.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final

import orjson

__all__ = ["PROBLEM_JSON", "PROBLEM_TYPES", "problem", "problem_body"]

PROBLEM_JSON: Final = "application/problem+json"

#: slug -> (status, title)
PROBLEM_TYPES: Final[dict[str, tuple[int, str]]] = {
    "unauthorized": (401, "Missing or unknown API key"),
    "forbidden": (403, "The API key's scope does not allow this"),
    "not-found": (404, "Not found"),
    "invalid-request": (422, "The request is not valid"),
    "backend-unavailable": (503, "A read model is unavailable"),
    "backend-timeout": (504, "A read model did not answer in time"),
}


def problem(
    status: int,
    detail: str,
    instance: str,
    *,
    slug: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """The problem object; ``slug`` one of ``PROBLEM_TYPES`` (None: ``about:blank``)."""
    if slug is None:
        kind, title = "about:blank", HTTPStatus(status).phrase
    else:
        kind, title = f"/problems/{slug}", PROBLEM_TYPES[slug][1]
    return {
        "type": kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extensions,
    }


def problem_body(problem_object: dict[str, Any]) -> bytes:
    return orjson.dumps(problem_object, default=str)
