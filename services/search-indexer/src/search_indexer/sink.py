"""The DynamoDB side of the search indexer: the table access (``IndexTable``) and the runtime
sink (``SearchIndexSink``). The only module that imports boto3 / ``sink_kit``.

Commit strategy ``commit-after-flush``: ``write_batch`` returns only when every change of the
batch is durable in DynamoDB (or known to be superseded), so the runtime commits the batch's
offsets after it. Redeliveries are harmless: every write is conditional on versions.

How one product change is written (``_apply``), all with single-item conditional writes:

1. Read the stored product item (consistent read, batched for the whole batch).
2. If it holds this version or a newer one: nothing to do (counted ``stale``/``duplicate``).
3. Plan the postings (``domain.plan_postings``): the diff stored tokens -> new tokens, plus
   every pending posting of this version or older stated again (live if in the new tokens,
   removed otherwise); pending postings of newer versions are carried, not touched.
4. Record the planned tokens as pending at this version (``pending_tokens``, conditional on
   the stored version and ``pending_rev`` still being the ones read), unless entries of this
   version or newer already cover them. Every posting write is thus covered by an entry
   before it is sent: an attempt may die, or its request may land seconds later, and the
   entry survives until a write of that version or a newer one has stated the posting again.
5. Write the postings, each conditional on the posting's own version being older than this
   change (a stale writer never removes or re-adds a posting a newer change wrote). A removal
   writes a versioned "removed" marker (expired by TTL), not a delete, so a late stale put
   cannot resurrect the posting.
6. Put the product item (or the deletion marker) with the carried entries, conditional on the
   stored version and ``pending_rev`` still being the ones read (optimistic concurrency): an
   entry recorded by anyone after the read makes the put fail, so it is never dropped unseen.
   If it fails, re-read and start again from 2.

Why this is exact at rest: the entries of a posting are only dropped by a product put whose
version is at least theirs, after that writer stated the posting; any write an unfinished
attempt sent carries an older (or the same) version, so it loses to that statement, and
every later put either leaves the token alone (its membership did not change) or states it
again. The last put is the last change's, so every posting ends as that change implies.

DynamoDB transactions would make 4-6 atomic, but cost twice the write units and cap a change
at 100 items; the version guards above give the same result at rest.

Versions are ``S`` (``cdc_events.source_version``); DynamoDB compares two ``S`` values byte by
byte, which is their order. Items of the previous release hold an ``N`` (a Kafka offset), and a
comparison between an ``N`` attribute and an ``S`` value is simply false: a posting write is
therefore ``attribute_not_exists(#v) OR attribute_type(#v, :n) OR #v < :v`` (``:n`` = ``"N"``),
so every numeric posting is replaced once, and the product guards match the stored version with
its own type (``#v = :b``, ``:b`` an ``N`` for an old item). Such an item reads as older than
any change, and its next write states every one of its postings again
(``StoredProduct.pending_to_settle``), so afterwards none of the product's items holds a number
and a late write of the old release (``#v < :v`` with an ``N`` value over an ``S``) is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import structlog
from botocore.config import Config
from botocore.exceptions import ClientError
from consumer_runtime import BaseSink, Batch, Offsets, RetryableError
from prometheus_client import CollectorRegistry
from sink_kit.aws import aws_errors, ensure_table, error_code, retry_at_start

from search_indexer._items import (
    PENDING_ATTR,
    PENDING_REV_ATTR,
    Item,
    StoredProduct,
    marker_item,
    parse_product,
    pending_entries,
    posting_item,
    product_item,
    product_key,
    removed_posting_item,
    table_definition,
    with_pending,
)
from search_indexer._metrics import IndexMetrics
from search_indexer._text import document_tokens
from search_indexer.domain import Deletion, Folded, PostingPlan, ProductChange, fold, plan_postings
from search_indexer.settings import Settings

__all__ = [
    "POSTING_CONDITION",
    "IndexTable",
    "SearchIndexSink",
    "make_dynamodb_client",
    "prepare_table",
]

_log = structlog.get_logger("search_indexer")

# BatchGetItem takes at most 100 keys per request (a DynamoDB limit).
_BATCH_GET_MAX = 100
# UnprocessedKeys (throttling inside a batch read) are retried with this pause, this often,
# before the batch gives up with a RetryableError and the runtime's backoff takes over.
_UNPROCESSED_PAUSE_S = 0.05
_UNPROCESSED_ATTEMPTS = 8
# Races on one product need two writers on one partition; a handful of rounds settles them.
_MAX_ATTEMPTS = 5
# /readyz asks often; one DescribeTable per this many seconds is plenty.
_HEALTH_CACHE_S = 5.0

#: A posting write (live or removal marker) goes over an absent posting, a posting of the
#: previous release (``N`` version: an ``S`` never compares with it) or an older one.
POSTING_CONDITION = "attribute_not_exists(#v) OR attribute_type(#v, :n) OR #v < :v"

_CLIENT_CONFIG = Config(
    # Every call here is a single-item write or a small read that DynamoDB answers in
    # milliseconds; one that has not answered in 2 s is stuck behind an unreachable or
    # overloaded endpoint. Failing it fast hands the batch to the runtime's backoff, which
    # pauses the partitions and keeps the member in its group, instead of holding the batch
    # for sink_kit's generic 10 s x 3 budget.
    connect_timeout=2,
    read_timeout=2,
    # No retries inside botocore: a timed-out request may still be applied later, and every
    # copy in flight is one more stale write racing the next attempt. The runtime retries the
    # whole (idempotent) batch with backoff instead. (``total_max_attempts`` counts the first
    # request; botocore's ``max_attempts`` counts retries, so 1 there would send two copies.)
    retries={"mode": "standard", "total_max_attempts": 1},
    # The write pool (WRITE_CONCURRENCY <= 32) shares this client's connections.
    max_pool_connections=32,
)


def make_dynamodb_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A DynamoDB client (thread-safe) for AWS, LocalStack or the emulator."""
    session = boto3.session.Session(region_name=region)
    return session.client("dynamodb", endpoint_url=endpoint_url or None, config=_CLIENT_CONFIG)


def _conditional_failed(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


class IndexTable:
    """Typed access to the index table over one (thread-safe) boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.name = table_name

    @classmethod
    def connect(
        cls, table_name: str, *, region: str | None = None, endpoint_url: str | None = None
    ) -> IndexTable:
        return cls(make_dynamodb_client(region, endpoint_url), table_name)

    # -- reads -------------------------------------------------------------------------------

    def read_products(
        self, ids: Sequence[int], *, consistent: bool = True
    ) -> dict[int, StoredProduct]:
        out: dict[int, StoredProduct] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _BATCH_GET_MAX):
            for item in self._batch_get(
                [product_key(i) for i in unique[start : start + _BATCH_GET_MAX]], consistent
            ):
                stored = parse_product(item)
                out[stored.id] = stored
        return out

    def _batch_get(self, keys: list[Item], consistent: bool) -> list[Item]:
        items: list[Item] = []
        request: dict[str, Any] = {self.name: {"Keys": keys, "ConsistentRead": consistent}}
        for _ in range(_UNPROCESSED_ATTEMPTS):
            with aws_errors(f"batch get {self.name}"):
                response = self.client.batch_get_item(RequestItems=request)
            items.extend(response.get("Responses", {}).get(self.name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(_UNPROCESSED_PAUSE_S)
        raise RetryableError(f"batch get {self.name}: keys still unprocessed (throttled)")

    def read_product(self, product_id: int, *, consistent: bool = True) -> StoredProduct | None:
        with aws_errors(f"get {self.name}"):
            response = self.client.get_item(
                TableName=self.name, Key=product_key(product_id), ConsistentRead=consistent
            )
        item = response.get("Item")
        return None if item is None else parse_product(item)

    def _query(self, **kwargs: Any) -> list[Item]:
        items: list[Item] = []
        limit = kwargs.get("Limit")
        while True:
            with aws_errors(f"query {self.name}"):
                response = self.client.query(TableName=self.name, **kwargs)
            items.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last or (limit is not None and len(items) >= limit):
                return items
            kwargs["ExclusiveStartKey"] = last

    def posting_ids(self, token: str) -> set[int]:
        """Products with a live posting of ``token`` (removal markers filtered out)."""
        items = self._query(
            KeyConditionExpression="pk = :pk",
            FilterExpression="attribute_not_exists(removed)",
            ExpressionAttributeValues={":pk": {"S": f"TOKEN#{token}"}},
            ProjectionExpression="sk",
        )
        return {int(i["sk"]["S"]) for i in items}

    def query_price(self, bucket: str, low: str | None, high: str | None) -> list[StoredProduct]:
        values: dict[str, Any] = {":b": {"S": bucket}}
        condition = "price_bucket = :b"
        if low is not None and high is not None:
            condition += " AND price BETWEEN :lo AND :hi"
            values.update({":lo": {"N": low}, ":hi": {"N": high}})
        elif low is not None:
            condition += " AND price >= :lo"
            values[":lo"] = {"N": low}
        elif high is not None:
            condition += " AND price <= :hi"
            values[":hi"] = {"N": high}
        items = self._query(
            IndexName="by-price", KeyConditionExpression=condition, ExpressionAttributeValues=values
        )
        return [parse_product(i) for i in items]

    def query_name(self, key: str, *, exact: bool, limit: int | None) -> list[StoredProduct]:
        """Products whose ``by-name`` key equals or starts with ``key`` (a ``name_key``, within
        the sort key limit), at most ``limit`` (``None``: all)."""
        op = "name_norm = :n" if exact else "begins_with(name_norm, :n)"
        page: dict[str, Any] = {} if limit is None else {"Limit": limit}
        items = self._query(
            IndexName="by-name",
            KeyConditionExpression=f"gsi_name_pk = :p AND {op}",
            ExpressionAttributeValues={":p": {"S": f"NAME#{key[0]}"}, ":n": {"S": key}},
            **page,
        )
        return [parse_product(i) for i in items[:limit]]

    def scan_all(self) -> list[Item]:
        """Every item (tests and tools on small tables only)."""
        items: list[Item] = []
        kwargs: dict[str, Any] = {"TableName": self.name, "ConsistentRead": True}
        while True:
            with aws_errors(f"scan {self.name}"):
                response = self.client.scan(**kwargs)
            items.extend(response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def reachable(self) -> bool:
        try:
            with aws_errors(f"describe {self.name}"):
                self.client.describe_table(TableName=self.name)
        except (RetryableError, ClientError):
            return False
        return True

    # -- conditional writes ------------------------------------------------------------------

    @staticmethod
    def _guard(base: Item | None, pending_rev: int) -> dict[str, Any]:
        """The stored version is still ``base`` (typed as stored, ``StoredProduct.version_value``;
        ``None``: no product yet) and no pending posting was recorded since ``pending_rev`` was
        read."""
        names = {"#v": "version", "#r": PENDING_REV_ATTR}
        values: dict[str, Any] = {}
        if base is None:
            version = "attribute_not_exists(#v)"
        else:
            version = "#v = :b"
            values[":b"] = base
        if pending_rev == 0:
            rev = "attribute_not_exists(#r)"
        else:
            rev = "#r = :r"
            values[":r"] = {"N": str(pending_rev)}
        guard: dict[str, Any] = {
            "ConditionExpression": f"{version} AND {rev}",
            "ExpressionAttributeNames": names,
        }
        if values:
            guard["ExpressionAttributeValues"] = values
        return guard

    def add_pending(
        self,
        product_id: int,
        tokens: frozenset[str],
        version: str,
        base: Item | None,
        pending_rev: int,
    ) -> bool:
        """Record postings about to be written at ``version``, if the product item is still as
        read (version ``base`` and ``pending_rev``); on success ``pending_rev`` is one higher."""
        guard = self._guard(base, pending_rev)
        values = {
            **guard.get("ExpressionAttributeValues", {}),
            ":t": {"SS": pending_entries(dict.fromkeys(tokens, version))},
            ":one": {"N": "1"},
        }
        with aws_errors(f"update {self.name}"):
            try:
                self.client.update_item(
                    TableName=self.name,
                    Key=product_key(product_id),
                    UpdateExpression=f"ADD {PENDING_ATTR} :t, #r :one",
                    ConditionExpression=guard["ConditionExpression"],
                    ExpressionAttributeNames=guard["ExpressionAttributeNames"],
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if _conditional_failed(exc):
                    return False
                raise
        return True

    def put_product(self, item: Item, base: Item | None, pending_rev: int) -> bool:
        """Put the product item (or marker) if the stored item is still as read (version
        ``base``, ``None``: no item yet; ``pending_rev``). False when another writer got there
        first."""
        kwargs = self._guard(base, pending_rev)
        with aws_errors(f"put {self.name}"):
            try:
                self.client.put_item(TableName=self.name, Item=item, **kwargs)
            except ClientError as exc:
                if _conditional_failed(exc):
                    return False
                raise
        return True

    def put_posting(self, token: str, product_id: int, version: str) -> bool:
        """Add the posting unless a posting of this or a newer version is there."""
        return self._put_posting(posting_item(token, product_id, version))

    def remove_posting(self, token: str, product_id: int, version: str, expires_at: int) -> bool:
        """Mark the posting removed unless a posting of this or a newer version is there."""
        return self._put_posting(removed_posting_item(token, product_id, version, expires_at))

    def _put_posting(self, item: Item) -> bool:
        """``PutItem`` over an absent posting, one of the previous release (numeric version:
        replaced once) or an older one; False when this or a newer version is there."""
        with aws_errors(f"put {self.name}"):
            try:
                self.client.put_item(
                    TableName=self.name,
                    Item=item,
                    ConditionExpression=POSTING_CONDITION,
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":v": item["version"], ":n": {"S": "N"}},
                )
            except ClientError as exc:
                if _conditional_failed(exc):
                    return False
                raise
        return True


def prepare_table(client: Any, table_name: str) -> bool:
    """Create the table from the packaged definition if it is missing, with TTL on ``ttl``
    (deletion markers expire). True if created. In production Terraform owns the table."""
    definition = table_definition(table_name)
    created = ensure_table(client, definition)
    if created:
        with aws_errors(f"enable TTL on {table_name}"):
            client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
            )
        _log.info("created the index table", table=table_name)
    return created


class SearchIndexSink(BaseSink[ProductChange]):
    """Folds each batch per product and writes the changes in parallel (bounded pool)."""

    def __init__(
        self,
        table: IndexTable,
        *,
        write_concurrency: int = 8,
        deletion_marker_ttl_s: int = 7 * 24 * 3600,
        metrics: IndexMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.deletion_marker_ttl_s = deletion_marker_ttl_s
        self.metrics = metrics or IndexMetrics()
        # Served by the runtime on /metrics next to its own (consumer_runtime's Sink docs).
        self.metrics_registry = self.metrics.registry
        self._clock = clock
        self._pool = ThreadPoolExecutor(write_concurrency, thread_name_prefix="index-write")
        self._healthy_at = 0.0

    @classmethod
    def from_settings(
        cls, settings: Settings, registry: CollectorRegistry | None = None
    ) -> SearchIndexSink:
        client = make_dynamodb_client(settings.aws_region, settings.aws_endpoint_url)
        if settings.create_table:
            retry_at_start(
                lambda: prepare_table(client, settings.dynamodb_table),
                f"preparing table {settings.dynamodb_table}",
            )
        return cls(
            IndexTable(client, settings.dynamodb_table),
            write_concurrency=settings.write_concurrency,
            deletion_marker_ttl_s=settings.deletion_marker_ttl_s,
            metrics=IndexMetrics(registry),
        )

    # -- Sink --------------------------------------------------------------------------------

    def write_batch(self, batch: Batch[ProductChange]) -> Offsets | None:
        changes = fold(batch)
        if not changes:
            return None
        stored = self.table.read_products([c.product_id for c in changes])
        futures = [self._pool.submit(self._apply, c, stored.get(c.product_id)) for c in changes]
        errors: list[BaseException] = []
        outcomes: dict[str, int] = {}
        for future in futures:  # wait for every write before reporting, even after a failure
            exc = future.exception()
            if exc is not None:
                errors.append(exc)
            else:
                outcome = future.result()
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if errors:
            retryable = [e for e in errors if isinstance(e, RetryableError)]
            if len(retryable) == len(errors):
                raise retryable[0]
            raise next(e for e in errors if not isinstance(e, RetryableError))
        if outcomes.get("stale") or outcomes.get("duplicate"):
            _log.info("superseded changes skipped", **outcomes)
        return None

    def healthy(self) -> bool:
        now = time.monotonic()
        if now - self._healthy_at < _HEALTH_CACHE_S:
            return True
        ok = self.table.reachable()
        if ok:
            self._healthy_at = now
        return ok

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- one product ---------------------------------------------------------------------------

    def _apply(self, change: Folded, stored: StoredProduct | None) -> str:
        pid, version = change.product_id, change.version
        for attempt in range(_MAX_ATTEMPTS):
            # A stub (pending postings only) or an item of the previous release has the
            # version "", below every source version: written over.
            if stored is not None and stored.version >= version:
                outcome = "duplicate" if stored.version == version else "stale"
                self.metrics.product(outcome)
                return outcome
            if self._attempt(change, stored):
                outcome = "deleted" if isinstance(change.state, Deletion) else "written"
                self.metrics.product(outcome)
                return outcome
            self.metrics.conflicts.inc()
            _log.debug("lost a race on a product; re-reading", product=pid, attempt=attempt)
            stored = self.table.read_product(pid)
        raise RetryableError(f"product {pid}: still contended after {_MAX_ATTEMPTS} attempts")

    def _attempt(self, change: Folded, stored: StoredProduct | None) -> bool:
        """One write of ``change`` over the product as read; False when another writer changed
        the product item meanwhile (nothing this attempt wrote is then left unrecorded)."""
        pid, version = change.product_id, change.version
        item, new_tokens = self._target(change, stored)
        base = None if stored is None else stored.version_value
        rev = 0 if stored is None else stored.pending_rev
        plan = plan_postings(
            stored.tokens if stored is not None else frozenset(),
            stored.pending_to_settle if stored is not None else {},
            new_tokens,
            version,
        )
        if plan.record:
            if not self.table.add_pending(pid, plan.record, version, base, rev):
                return False
            rev += 1
        self._write_postings(pid, version, plan)
        return self.table.put_product(with_pending(item, plan.carry), base, rev)

    def _write_postings(self, pid: int, version: str, plan: PostingPlan) -> None:
        for token in sorted(plan.put):
            self.metrics.posting("put", self.table.put_posting(token, pid, version))
        expires = self._expires_at()
        for token in sorted(plan.remove):
            self.metrics.posting("remove", self.table.remove_posting(token, pid, version, expires))
        if plan.settled:
            self.metrics.repairs.inc(len(plan.settled))

    def _target(self, change: Folded, stored: StoredProduct | None) -> tuple[Item, frozenset[str]]:
        """The item to write and the tokens its postings must hold."""
        partition, offset = change.partition, change.offset
        state = change.state
        if isinstance(state, Deletion):
            marker = marker_item(
                change.product_id,
                change.version,
                self._expires_at(),
                partition=partition,
                offset=offset,
            )
            return marker, frozenset()
        if state.description is None:
            # TOAST: Debezium did not send the description; keep the indexed one.
            live = stored is not None and not stored.deleted
            description = stored.description if stored is not None and live else ""
        else:
            description = state.description
        name_tokens, desc_tokens = document_tokens(state.name, description)
        item = product_item(
            state,
            description,
            name_tokens,
            desc_tokens,
            change.version,
            partition=partition,
            offset=offset,
        )
        return item, frozenset(name_tokens) | frozenset(desc_tokens)

    def _expires_at(self) -> int:
        return int(self._clock()) + self.deletion_marker_ttl_s
