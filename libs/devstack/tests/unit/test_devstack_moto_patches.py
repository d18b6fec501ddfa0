"""The emulator's patches to moto (``devstack._moto_patches``) keep DynamoDB's behaviour.

They run in moto's own process in the dev stack; here they are applied in-process (moto's
``mock_aws``) so a moto upgrade that changes what they replace fails here, by name, rather than
as slow or wrong transactions somewhere in the services' suites.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from devstack import _moto_patches
from moto import mock_aws


@pytest.fixture
def table() -> Iterator[Any]:
    _moto_patches.apply()
    with mock_aws():
        client = boto3.client(
            "dynamodb",
            region_name="eu-west-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _get(client: Any, pk: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = client.get_item(TableName="t", Key={"pk": {"S": pk}}).get("Item")
    return item


def test_a_cancelled_transaction_changes_nothing_it_named(table: Any) -> None:
    table.put_item(TableName="t", Item={"pk": {"S": "a"}, "v": {"S": "p10"}})
    table.put_item(TableName="t", Item={"pk": {"S": "b"}, "v": {"S": "p30"}})
    with pytest.raises(ClientError) as caught:
        table.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "v": {"S": "p20"}}}},
                {"Delete": {"TableName": "t", "Key": {"pk": {"S": "c"}}}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "b"}},
                        "UpdateExpression": "SET v = :v",
                        "ConditionExpression": "v < :v",
                        "ExpressionAttributeValues": {":v": {"S": "p20"}},  # older: refused
                    }
                },
            ],
        )
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in caught.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert _get(table, "a") == {"pk": {"S": "a"}, "v": {"S": "p10"}}  # the put rolled back
    assert _get(table, "b") == {"pk": {"S": "b"}, "v": {"S": "p30"}}
    assert _get(table, "c") is None


def test_a_committed_transaction_writes_every_item(table: Any) -> None:
    table.put_item(TableName="t", Item={"pk": {"S": "a"}, "v": {"S": "p10"}})
    table.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": "t",
                    "Item": {"pk": {"S": "a"}, "v": {"S": "p20"}},
                    "ConditionExpression": "v < :v",
                    "ExpressionAttributeValues": {":v": {"S": "p20"}},
                }
            },
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "v": {"S": "p20"}}}},
        ],
    )
    assert _get(table, "a") == {"pk": {"S": "a"}, "v": {"S": "p20"}}
    assert _get(table, "b") == {"pk": {"S": "b"}, "v": {"S": "p20"}}


def test_a_put_in_a_transaction_checks_its_condition_once_and_decides_as_moto(
    table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb import comparisons
    from moto.dynamodb.models import table as moto_table

    evaluated: list[str | None] = []
    parse = comparisons.get_filter_expression

    def counting(expression: Any, *args: Any) -> Any:
        evaluated.append(expression)
        return parse(expression, *args)

    monkeypatch.setattr(comparisons, "get_filter_expression", counting)
    monkeypatch.setattr(moto_table, "get_filter_expression", counting)
    import moto.dynamodb.models as models

    monkeypatch.setattr(models, "get_filter_expression", counting)
    table.put_item(TableName="t", Item={"pk": {"S": "a"}, "v": {"S": "p10"}})
    evaluated.clear()

    def put(pk: str, version: str) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": "t",
                "Item": {"pk": {"S": pk}, "v": {"S": version}},
                "ConditionExpression": "attribute_not_exists(v) OR v < :v",
                "ExpressionAttributeValues": {":v": {"S": version}},
            }
        }

    table.transact_write_items(TransactItems=[put("a", "p20"), put("b", "p20")])
    conditions = [e for e in evaluated if e is not None]
    assert conditions == ["attribute_not_exists(v) OR v < :v"] * 2  # moto's check, not again
    assert _get(table, "a") == {"pk": {"S": "a"}, "v": {"S": "p20"}}
    # The check still decides: an older version cancels the whole transaction.
    with pytest.raises(ClientError) as caught:
        table.transact_write_items(TransactItems=[put("a", "p15"), put("c", "p20")])
    reasons = [r["Code"] for r in caught.value.response["CancellationReasons"]]
    assert reasons == ["ConditionalCheckFailed", "None"]
    assert _get(table, "a") == {"pk": {"S": "a"}, "v": {"S": "p20"}}
    assert _get(table, "c") is None
    # Outside a transaction a conditional put still checks its condition itself.
    with pytest.raises(ClientError):
        table.put_item(
            TableName="t",
            Item={"pk": {"S": "a"}, "v": {"S": "p15"}},
            ConditionExpression="v < :v",
            ExpressionAttributeValues={":v": {"S": "p15"}},
        )


def test_an_item_past_400_kb_is_refused_as_dynamodb_refuses_it(table: Any) -> None:
    attrs = {f"a{i}": {"S": "x" * 30_000} for i in range(14)}  # ~420 KB over 14 attributes
    with pytest.raises(ClientError) as caught:
        table.put_item(TableName="t", Item={"pk": {"S": "big"}, **attrs})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "size" in caught.value.response["Error"]["Message"].lower()
    small = {f"a{i}": {"S": "x" * 30_000} for i in range(12)}  # ~360 KB: fits
    table.put_item(TableName="t", Item={"pk": {"S": "ok"}, **small})
    assert _get(table, "ok") is not None


def test_conditions_still_see_their_own_values_when_parses_are_memoised(table: Any) -> None:
    # The same condition text with other values must not reuse the first values.
    put = {"TableName": "t", "ConditionExpression": "attribute_not_exists(v) OR v < :v"}
    table.put_item(Item={"pk": {"S": "a"}, "v": {"S": "p2"}}, **put,
                   ExpressionAttributeValues={":v": {"S": "p2"}})  # fmt: skip
    with pytest.raises(ClientError):
        table.put_item(Item={"pk": {"S": "a"}, "v": {"S": "p1"}}, **put,
                       ExpressionAttributeValues={":v": {"S": "p1"}})  # fmt: skip
    table.put_item(Item={"pk": {"S": "a"}, "v": {"S": "p3"}}, **put,
                   ExpressionAttributeValues={":v": {"S": "p3"}})  # fmt: skip
    assert _get(table, "a") == {"pk": {"S": "a"}, "v": {"S": "p3"}}


def _parsed(operation: str, body: dict[str, Any], *, original: bool) -> Any:
    from moto.core.parse import JSONParser
    from moto.core.responses import get_service_model

    _moto_patches.apply()
    parser_cls = JSONParser
    if original:
        parser_cls = type(
            "Original",
            (JSONParser,),
            {"_parse_structure": _moto_patches._originals["parse_structure"]},
        )
    model = get_service_model("dynamodb").operation_model(operation)
    parser = parser_cls(model, map_type=dict)
    import json

    return parser.parse(
        {
            "method": "POST",
            "values": {},
            "headers": {},
            "body": json.dumps(body).encode(),
            "url_path": "/",
            "url_params": {},
        }
    )


_EVERY_TYPE = {
    "pk": {"S": "PRODUCT#1"},
    "n": {"N": "12.50"},
    "b": {"B": "aGVsbG8="},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": ["AAE=", "/w=="]},
    "null": {"NULL": True},
    "bool": {"BOOL": False},
    "l": {"L": [{"S": "x"}, {"N": "1"}, {"L": [{"B": "AA=="}]}, {"M": {"k": {"BOOL": True}}}]},
    "m": {"M": {"a": {"SS": ["z"]}, "b": {"M": {"c": {"NULL": True}}}, "d": {"L": []}}},
    "two": {"S": "both", "N": "1"},  # malformed (two members): parsed as moto parses it
    "odd": {"S": "kept", "X": "unknown member dropped"},
}


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        (
            "PutItem",
            {
                "TableName": "t",
                "Item": _EVERY_TYPE,
                "ConditionExpression": "#v < :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": {"S": "q1"}, ":e": {"L": []}},
            },
        ),
        (
            "TransactWriteItems",
            {
                "TransactItems": [
                    {
                        "Put": {
                            "TableName": "t",
                            "Item": _EVERY_TYPE,
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                    {
                        "Update": {
                            "TableName": "t",
                            "Key": {"pk": {"S": "k"}},
                            "UpdateExpression": "ADD p :s",
                            "ExpressionAttributeValues": {":s": {"SS": ["t@1"]}},
                        }
                    },
                    {"Delete": {"TableName": "t", "Key": {"pk": {"S": "d"}}}},
                ]
            },
        ),
        ("BatchWriteItem", {"RequestItems": {"t": [{"PutRequest": {"Item": _EVERY_TYPE}}]}}),
        (
            "Query",
            {
                "TableName": "t",
                "KeyConditionExpression": "pk = :p",
                "ExpressionAttributeValues": {":p": {"S": "x"}},
                "ExclusiveStartKey": {"pk": {"S": "x"}, "sk": {"N": "3"}},
                "Limit": 5,
            },
        ),
    ],
)
def test_requests_parse_exactly_as_moto_parses_them(operation: str, body: dict[str, Any]) -> None:
    """The direct ``AttributeValue`` parse gives moto's own parameters, every type included
    (blobs decoded, nested lists and maps, malformed values), for each operation's shapes."""
    fast = _parsed(operation, body, original=False)
    assert fast == _parsed(operation, body, original=True)
    assert fast  # the request was really parsed (not an empty result on both sides)


_CONDITIONS = [
    "#v < :v",
    "tokens_hash = :h AND #v < :v",
    "attribute_not_exists(#v) OR attribute_type(#v, :n) OR #v < :v",
    "NOT (#v BETWEEN :lo AND :hi)",
    "#v IN (:a, :b, :c)",
    "begins_with(#v, :p) AND size(#v) > :n2",
    "(#v <> :v) AND (attribute_exists(tokens_hash) OR #r = :r)",
]
_ITEMS = [
    None,
    {
        "pk": {"S": "k"},
        "version": {"S": "q5"},
        "tokens_hash": {"S": "h1"},
        "pending_rev": {"N": "2"},
    },
    {"pk": {"S": "k"}, "version": {"N": "7"}},
    {"pk": {"S": "k"}, "version": {"S": "q9"}},
]


def _values(rng: Any) -> dict[str, Any]:
    pick = lambda: {"S": f"q{rng.randint(0, 9)}"}  # noqa: E731
    return {
        ":v": pick(), ":h": {"S": rng.choice(("h1", "h2"))}, ":n": {"S": rng.choice(("N", "S"))},
        ":lo": pick(), ":hi": pick(), ":a": pick(), ":b": pick(), ":c": pick(),
        ":p": {"S": rng.choice(("q", "p"))}, ":n2": {"N": str(rng.randint(0, 3))},
        ":r": {"N": str(rng.randint(1, 3))},
    }  # fmt: skip


def _decide(op: Any, item: Any) -> Any:
    try:
        return op.expr(item)
    except TypeError as exc:  # moto compares an N with an S this way (DynamoDB: false)
        return type(exc)


def test_condition_trees_memoised_without_values_decide_as_moto_does() -> None:
    """A condition parsed once and reused with other values decides every item exactly as
    moto's own parse of those values (comparisons, BETWEEN, IN, functions, NOT, parentheses)."""
    import random

    from moto.dynamodb.comparisons import ConditionExpressionParser as Parser
    from moto.dynamodb.models.dynamo_type import Item

    _moto_patches.apply()
    original = _moto_patches._originals["condition_parse"]
    names = {"#v": "version", "#r": "pending_rev"}
    rng = random.Random(7)
    decided = set()
    for _ in range(300):
        text = rng.choice(_CONDITIONS)
        values = _values(rng)
        used = {k: v for k, v in values.items() if k in text}
        fast = Parser(text, names, used).parse()
        slow = original(Parser(text, names, used))
        for attrs in _ITEMS:
            item = None if attrs is None else Item(attrs["pk"], None, attrs)
            outcome = _decide(fast, item)
            assert outcome == _decide(slow, item), (text, used, attrs)
            decided.add(outcome)
    assert {True, False} <= decided  # both outcomes were exercised
    with pytest.raises(KeyError):  # a placeholder without a value is refused as before
        Parser("#v < :v", names, {":w": {"S": "q1"}}).parse()


def _query_pages(client: Any, **kwargs: Any) -> list[Any]:
    pages = []
    while True:
        page = client.query(TableName="q", **kwargs)
        pages.append((page["Items"], page.get("Count"), page.get("ScannedCount")))
        if "LastEvaluatedKey" not in page:
            return pages
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_queries_read_their_partition_and_answer_as_moto_does() -> None:
    """Queries of the table (one partition) and of an index, with key conditions, filters,
    projections, limits, paging and both orders, answer exactly as moto's whole-table walk."""
    from moto.dynamodb.models.table import Table

    _moto_patches.apply()
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        client.create_table(
            TableName="q",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": t}
                for a, t in (("pk", "S"), ("sk", "S"), ("g", "S"), ("n", "N"))
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-g",
                    "KeySchema": [
                        {"AttributeName": "g", "KeyType": "HASH"},
                        {"AttributeName": "n", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for i in range(120):
            item = {"pk": {"S": f"P{i % 7}"}, "sk": {"S": f"{i:04d}"}, "v": {"N": str(i % 5)}}
            if i % 3:
                item.update(g={"S": f"G{i % 4}"}, n={"N": str(i % 11)})
            client.put_item(TableName="q", Item=item)
        queries: list[dict[str, Any]] = [
            {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "P3"}}},
            {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "P9"}}},
            {
                "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
                "FilterExpression": "v > :z",
                "ProjectionExpression": "sk",
                "ExpressionAttributeValues": {
                    ":p": {"S": "P1"},
                    ":a": {"S": "0010"},
                    ":b": {"S": "0090"},
                    ":z": {"N": "1"},
                },
                "Limit": 4,
                "ScanIndexForward": False,
            },
            {
                "IndexName": "by-g",
                "KeyConditionExpression": "g = :g AND n >= :n",
                "ExpressionAttributeValues": {":g": {"S": "G1"}, ":n": {"N": "3"}},
                "Limit": 5,
            },
            {
                "IndexName": "by-g",
                "KeyConditionExpression": "g = :g",
                "FilterExpression": "v = :v",
                "ExpressionAttributeValues": {":g": {"S": "G2"}, ":v": {"N": "2"}},
                "ScanIndexForward": False,
            },
        ]
        patched = [_query_pages(client, **dict(q)) for q in queries]
        saved = Table.query, Table.all_items
        Table.query = _moto_patches._originals["query"]  # type: ignore[method-assign]
        Table.all_items = _moto_patches._originals["all_items"]  # type: ignore[method-assign]
        try:
            original = [_query_pages(client, **dict(q)) for q in queries]
        finally:
            Table.query, Table.all_items = saved  # type: ignore[method-assign]
        assert patched == original
        assert [len(p) for p in patched] == [len(o) for o in original]
        assert sum(len(items) for pages in patched for items, *_ in pages) > 30  # real answers
        assert len(patched[2]) > 1 and len(patched[3]) > 1  # paging was exercised
