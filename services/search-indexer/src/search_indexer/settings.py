"""Settings of the search indexer, read once from the environment at the entry point.

The runtime's variables (``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_GROUP_ID``, ``BATCH_SIZE``, ...,
see ``consumer_runtime.RuntimeSettings``) plus:

- ``KAFKA_TOPICS`` (``dbserver1.public.products``): the products change topic.
- ``DYNAMODB_TABLE`` (``product-search-index``): the index table.
- ``AWS_ENDPOINT_URL`` (unset): LocalStack or the emulator; unset on AWS.
- ``AWS_REGION`` (unset): the table's region (boto3's default chain when unset).
- ``CREATE_TABLE`` (``true``): create the table, with TTL on ``ttl``, at start if missing.
- ``WRITE_CONCURRENCY`` (``8``): products written in parallel per batch.
- ``BATCH_SIZE`` (``2000``, the runtime's default is 500): changes of one product within a
  batch are folded into one write, and a shop's product changes are mostly a few hot products'
  stock; a larger batch folds more of them when the indexer has a backlog (at low traffic
  batches are cut by ``BATCH_MAX_WAIT_MS`` anyway).
- ``BATCH_MAX_WAIT_MS`` (``100``, the runtime's default): how long a batch waits to fill. At a
  shop's usual rate (a few hundred product changes a second) batches are cut by this wait, never
  by ``BATCH_SIZE``, so it adds up to its whole value to every change's freshness. With a
  backlog batches fill at once and the wait costs nothing.
- ``DELETION_MARKER_TTL_S`` (``604800``): how long deletion and posting-removal markers
  outlive the change that wrote them.
- ``WRITE_BEHIND`` (``true``): each batch is written on a background thread while the loop
  polls and decodes the next one (``consumer_runtime.WriteBehind``: one batch in flight, in
  order; its offsets are committed once its writes returned). Without it, DynamoDB waits while
  the indexer decodes and plans each batch.

``VERSION_EPOCH`` is gone: versions come from the source (``domain``), so a re-created topic
needs no setting. A deployment that still sets it is not refused; the variable is ignored
(``RuntimeSettings`` ignores unknown variables).
"""

from __future__ import annotations

from typing import Annotated

from consumer_runtime import RuntimeSettings
from pydantic import Field
from pydantic_settings import NoDecode

__all__ = ["DEFAULT_TOPICS", "Settings"]

DEFAULT_TOPICS = ("dbserver1.public.products",)


class Settings(RuntimeSettings):
    kafka_topics: Annotated[tuple[str, ...], NoDecode] = Field(default=DEFAULT_TOPICS, min_length=1)
    dynamodb_table: str = Field(default="product-search-index", min_length=3, max_length=255)
    aws_endpoint_url: str | None = None
    create_table: bool = True
    # Conditional writes are one round trip each; 8 in flight keeps a batch's latency near
    # its slowest product without exceeding the client's connection pool (32).
    write_concurrency: int = Field(default=8, ge=1, le=32)
    # Folding: see the module docstring. Every product write is a conditional round trip, so
    # a backlog drains faster the more changes one batch folds together.
    batch_size: int = Field(default=2000, ge=1, le=100_000)
    # A deletion marker stops late, older changes (replays, zombie consumers) from resurrecting
    # a product; a week is far beyond any redelivery and then TTL removes it.
    deletion_marker_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    # Write-behind: see the module docstring.
    write_behind: bool = True
