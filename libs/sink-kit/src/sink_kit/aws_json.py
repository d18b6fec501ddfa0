"""Request bodies of hot DynamoDB calls written by orjson instead of botocore's model walk.

botocore turns a JSON-protocol request into its body by walking the API model for every value:
each typed attribute (``{"S": "x"}``) costs a structure lookup and a dispatch per member. For a
100-item ``TransactWriteItems`` of product items that walk was about a quarter of a writer's CPU
time, on a machine where the writer and the store it waits for share the cores. For DynamoDB's
JSON protocol the walk changes a value only where the model says blob (base64) or timestamp
(epoch seconds), and renames nothing, so for parameters holding only text, numbers, booleans,
lists and maps the body is exactly ``json.dumps(parameters)``.

``plain_json_requests(client, operations)`` wraps the client's serializer: for the named
operations the body is ``orjson.dumps(parameters)``; parameters orjson would write differently
from botocore (bytes, ``datetime``, ``Decimal``, dataclasses, anything not plain JSON) raise in
orjson and take botocore's own path, as does every other operation. The method, URL and
headers (``X-Amz-Target``, ``Content-Type``) are botocore's, from the same serializer. Signing,
retries, endpoint resolution and response parsing are untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

__all__ = ["HOT_DYNAMODB_OPERATIONS", "plain_json_requests"]

#: The calls a DynamoDB sink makes per batch: the ones worth writing without the model walk.
HOT_DYNAMODB_OPERATIONS = frozenset({"TransactWriteItems", "BatchGetItem", "BatchWriteItem"})

# Values orjson would write where botocore writes something else go to ``default`` (and so
# to botocore's path) instead of being written natively.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _not_plain(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not plain JSON")


class _PlainJSONSerializer:
    def __init__(self, inner: Any, operations: frozenset[str]) -> None:
        self._inner = inner
        self._operations = operations

    def serialize_to_request(self, parameters: Any, operation_model: Any) -> Any:
        if (
            operation_model.name in self._operations
            and operation_model.metadata.get("protocol") == "json"
        ):
            try:
                body = orjson.dumps(parameters, default=_not_plain, option=_OPTIONS)
            except TypeError:
                pass
            else:
                # botocore's own request (method, URL, target and content-type headers) for no
                # parameters: the cheap part of its work.
                request = self._inner.serialize_to_request({}, operation_model)
                request["body"] = body
                return request
        return self._inner.serialize_to_request(parameters, operation_model)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def plain_json_requests(client: Any, operations: Iterable[str] = HOT_DYNAMODB_OPERATIONS) -> Any:
    """Install the orjson bodies on ``client`` (a boto3 DynamoDB client made with
    ``Config(parameter_validation=False)``: a client that validates parameters walks the model
    anyway) for ``operations``; returns the client. Idempotent."""
    serializer = client._serializer  # botocore.client.BaseClient: the request serializer
    if type(serializer).__name__ == "ParamValidationDecorator":
        raise ValueError("plain JSON bodies need a client made with parameter_validation=False")
    if not isinstance(serializer, _PlainJSONSerializer):
        client._serializer = _PlainJSONSerializer(serializer, frozenset(operations))
    return client
