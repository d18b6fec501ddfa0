"""Settings of the stats aggregator, read once from the environment by ``__main__``.

The runtime's Kafka settings and the sink database (``PostgresSinkSettings``) plus what is
specific to the statistics. Environment names are the field names upper-cased:

| variable | default | meaning |
|---|---|---|
| ``KAFKA_TOPICS`` | the four shop topics + ``user-events`` | what to consume |
| ``DATABASE_URL`` | required | the read-model database (SQLAlchemy URL, a secret) |
| ``LOW_STOCK_THRESHOLD`` | ``10`` | a product is low on stock below this many units |
| ``USER_EVENTS_TOPIC`` | ``user-events`` | which subscribed topic carries user-activity events |
| ``INVENTORY_TABLE`` | unset (off) | DynamoDB stock projection table (``inventory-realtime``) |
| ``INVENTORY_CREATE_TABLE`` | ``false`` | create the table from its definition at start (dev) |
| ``AWS_ENDPOINT_URL`` | unset | LocalStack / the emulator, for the projection |
| ``ALERTS_TOPIC`` | ``alerts.low-stock`` | topic the outbox's low-stock alerts are meant for |
| ``MAX_CLOCK_SKEW_SECONDS`` | ``300`` | no user event moves the scores' "as of" past now + this |
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import NoDecode
from sink_kit.postgres import PostgresSinkSettings

SERVICE_NAME = "stats-aggregator"

DEFAULT_TOPICS = (
    "dbserver1.public.customers",
    "dbserver1.public.products",
    "dbserver1.public.orders",
    "dbserver1.public.order_items",
    "user-events",
)

# User events carry the time the front end stamped on them, from clocks we do not run (app
# servers, browsers): minutes of drift are ordinary, so up to 5 minutes ahead of our clock is
# believed. The cost of a bogus time within it is an "as of" at most 5 minutes ahead of real
# time: anyone's recency lower by at most 0.01 % of its 30-day horizon.
DEFAULT_MAX_CLOCK_SKEW_S = 300


class Settings(PostgresSinkSettings):
    """Everything the aggregator reads from the environment."""

    kafka_topics: Annotated[tuple[str, ...], NoDecode] = Field(default=DEFAULT_TOPICS, min_length=1)
    low_stock_threshold: int = Field(default=10, ge=0)
    user_events_topic: str = Field(default="user-events", min_length=1)
    alerts_topic: str = Field(default="alerts.low-stock", min_length=1)
    inventory_table: str | None = None
    inventory_create_table: bool = False
    aws_endpoint_url: str | None = None
    # See DEFAULT_MAX_CLOCK_SKEW_S; above a day the bound would no longer protect anything.
    max_clock_skew_seconds: int = Field(default=DEFAULT_MAX_CLOCK_SKEW_S, ge=0, le=86_400)
