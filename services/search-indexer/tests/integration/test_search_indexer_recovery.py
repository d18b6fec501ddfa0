"""Crash and late-request recovery of the postings, step by step against the AWS emulator.

Each test plays one interleaving the outage test can only hit by chance: an attempt that dies
after writing postings but before its product put, a redelivery that folds the batch
differently (a crashed member had consumed further than its successor's first batch), a
request that reaches the table after its client timed out, and a second owner that records
pending postings after the first one read the product. The faults are injected where botocore
sends a request: a request is dropped (the process died before sending it) or held back and
delivered later, byte for byte, to the emulator (it was stuck in the network). At the end the
postings must be exactly what the last change implies and no pending entry may be left.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from consumer_runtime import Batch, RetryableError, TopicPartition
from devstack import AwsEmulator
from search_indexer import IndexTable, SearchIndexSink, document_tokens
from search_indexer._items import parse_product, product_key
from search_indexer.domain import Product, ProductChange
from search_indexer.sink import make_dynamodb_client

TOPIC = "dbserver1.public.products"
TP = TopicPartition(TOPIC, 0)
PID = 1

Rule = Callable[[str, dict[str, Any]], bool]


def change(offset: int, description: str, name: str = "Teapot") -> ProductChange:
    """The change read at ``offset``, with a source version in the same order."""
    product = Product(PID, name, description, Decimal("12.50"), 3, None)
    text = str(offset).zfill(20)
    version = "q" + text + "2" + text + text
    return ProductChange(PID, product, version, TOPIC, 0, offset)


def batch(*changes: ProductChange) -> Batch[ProductChange]:
    return Batch(records={TP: list(changes)}, next_offsets={TP: changes[-1].offset + 1})


def product_put(operation: str, body: dict[str, Any]) -> bool:
    return operation == "PutItem" and body["Item"]["pk"]["S"] == f"PRODUCT#{PID}"


def posting_put(token: str) -> Rule:
    def rule(operation: str, body: dict[str, Any]) -> bool:
        return operation == "PutItem" and body["Item"]["pk"]["S"] == f"TOKEN#{token}"

    return rule


def pending_record(operation: str, body: dict[str, Any]) -> bool:
    return operation == "UpdateItem"


class Network:
    """What happens to one member's requests on their way to the emulator.

    ``drop(rule)``: matching requests are never sent (the member died first); ``hold(rule)``:
    they are kept back, and ``deliver_held`` sends them later, unchanged. Either way the client
    sees a read timeout, as it would. ``before(rule, action)`` runs ``action`` once, just before
    the next matching request is sent (another member acting in between)."""

    def __init__(self, client: Any) -> None:
        self.held: list[tuple[str, dict[str, str], bytes]] = []
        self._lost: list[tuple[Rule, bool]] = []  # (rule, keep the request for later)
        self._before: list[tuple[Rule, Callable[[], None]]] = []
        client.meta.events.register("before-send.dynamodb", self._before_send)

    def drop(self, rule: Rule) -> None:
        self._lost.append((rule, False))

    def hold(self, rule: Rule) -> None:
        self._lost.append((rule, True))

    def before(self, rule: Rule, action: Callable[[], None]) -> None:
        self._before.append((rule, action))

    def _before_send(self, request: Any, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        body = json.loads(request.body or b"{}")
        for i, (rule, action) in enumerate(self._before):
            if rule(operation, body):
                del self._before[i]
                action()
                break
        for rule, keep in self._lost:
            if rule(operation, body):
                if keep:
                    self.held.append((request.url, dict(request.headers.items()), request.body))
                raise ReadTimeoutError(endpoint_url=request.url)

    def deliver_held(self) -> list[int]:
        """Send every held request now; their HTTP statuses (400: the condition failed)."""
        statuses = []
        for url, headers, body in self.held:
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    statuses.append(response.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        return statuses


@pytest.fixture
def member(index_table: IndexTable, aws_emulator: AwsEmulator) -> Iterator[Callable[[], Any]]:
    """A fresh indexer member (its own client, so its own network): a restart is a new one."""
    sinks: list[SearchIndexSink] = []

    def _member() -> Any:
        client = make_dynamodb_client("us-east-1", aws_emulator.endpoint_url)
        # Every change through the large-product protocol (the one these interleavings test):
        # a product of a few tokens would otherwise fit in one transaction.
        sink = SearchIndexSink(IndexTable(client, index_table.name), max_transaction_postings=0)
        sinks.append(sink)
        return sink, Network(client)

    yield _member
    for sink in sinks:
        sink.close()


def live_postings(table: IndexTable) -> set[str]:
    return {
        item["pk"]["S"].removeprefix("TOKEN#")
        for item in table.scan_all()
        if item["pk"]["S"].startswith("TOKEN#")
        and item["sk"]["S"] == str(PID)
        and not item.get("removed", {}).get("BOOL")
    }


def assert_exact(table: IndexTable, description: str, name: str = "Teapot") -> None:
    name_tokens, desc_tokens = document_tokens(name, description)
    assert live_postings(table) == {*name_tokens, *desc_tokens}
    item = table.client.get_item(TableName=table.name, Key=product_key(PID), ConsistentRead=True)[
        "Item"
    ]
    assert "pending_tokens" not in item, item  # every entry settled
    assert parse_product(item).description == description


def test_a_redelivery_folded_to_an_older_change_does_not_forget_the_crashed_attempt(
    index_table: IndexTable, member: Callable[[], Any]
) -> None:
    """The crashed member had folded up to offset 9 and wrote those postings (green live,
    blue removed, both at version 9); its successor's first batch ends at offset 5, whose
    statements of green and blue lose to version 9. The successor's product put used to drop
    the pending record, so the next change (offset 11, diffed from offset 5's tokens) never
    looked at green or blue again: an orphan "green" and a missing "blue"."""
    first, first_net = member()
    first.write_batch(batch(change(3, "blue")))

    first_net.drop(product_put)  # killed after its postings, before its product put
    with pytest.raises(RetryableError):
        first.write_batch(batch(change(5, "blue red"), change(9, "green")))
    assert live_postings(index_table) == {"teapot", "green"}  # half done, at version 9

    second, _ = member()  # the restarted member, from the last commit
    second.write_batch(batch(change(5, "blue red")))
    second.write_batch(batch(change(9, "green"), change(11, "blue yellow")))
    assert_exact(index_table, "blue yellow")


def test_a_posting_write_landing_after_a_redelivery_is_settled_by_the_next_change(
    index_table: IndexTable, member: Callable[[], Any]
) -> None:
    """A posting put of version 9 is stuck in the network when its client times out; the
    redelivery (folded to offset 5) states that posting removed at version 5 and puts its
    product; then the stuck request lands and, being newer, wins. Only an entry kept for
    version 9 brings a later change back to it. A copy landing after that loses."""
    first, first_net = member()
    first.write_batch(batch(change(3, "blue")))

    first_net.hold(posting_put("green"))
    with pytest.raises(RetryableError):
        first.write_batch(batch(change(5, "red"), change(9, "green")))

    second, _ = member()
    second.write_batch(batch(change(5, "red")))
    assert first_net.deliver_held()[0] == 200  # the late put of version 9 is applied
    assert "green" in live_postings(index_table)
    second.write_batch(batch(change(9, "green"), change(11, "yellow")))
    assert_exact(index_table, "yellow")
    assert set(first_net.deliver_held()) == {400}  # copies landing even later: refused
    assert_exact(index_table, "yellow")


def test_a_pending_record_made_after_another_owner_read_the_product_is_not_dropped(
    index_table: IndexTable, member: Callable[[], Any]
) -> None:
    """Two owners of the partition read the product at version 3. Before the slower one
    (offset 7) records its postings, the faster one (offset 9) records red and blue, writes
    them and dies. The slower one's product put must not drop that record unseen (it used to:
    its conditions only checked the version): the faster owner's successor folds further
    (offset 11) and diffs from offset 7's tokens, so only the record leads it to red."""
    first, _ = member()
    first.write_batch(batch(change(3, "blue")))

    slow, slow_net = member()
    fast, fast_net = member()
    fast_net.drop(product_put)

    def fast_owner_records_writes_and_dies() -> None:
        with pytest.raises(RetryableError):
            fast.write_batch(batch(change(9, "red")))

    slow_net.before(pending_record, fast_owner_records_writes_and_dies)
    slow.write_batch(batch(change(7, "green")))

    successor, _ = member()
    successor.write_batch(batch(change(9, "red"), change(11, "yellow")))
    assert_exact(index_table, "yellow")
