"""Settings of the event-store writer, read once from the environment at the entry point.

Everything the runtime and the PostgreSQL sink kit read (``KAFKA_*``, ``BATCH_*``,
``DATABASE_URL``, ``DB_POOL_*``, ...) plus the writer's own:

* ``KAFKA_TOPICS`` (default ``^dbserver1\\.public\\..*,user-events``): the CDC topics by
  pattern and the activity topic.
* ``USER_EVENTS_TOPICS`` (``user-events``): topics holding user-activity events; the rest is CDC.
* ``PARTITIONS_AHEAD`` (``3``): monthly partitions of ``cdc_events`` created ahead of time.
* ``STORE_TRANSACTIONS`` (``true``): keep BEGIN/END records, when their topic is subscribed,
  in ``cdc_transactions``.
* ``MAX_RECORD_BYTES`` (``1048576``): larger records go to the dead-letter queue.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode
from sink_kit.postgres import PostgresSinkSettings

DEFAULT_TOPICS = (r"^dbserver1\.public\..*", "user-events")


class Settings(PostgresSinkSettings):
    """``PostgresSinkSettings`` plus the event store's own settings (frozen)."""

    kafka_topics: Annotated[tuple[str, ...], NoDecode] = Field(default=DEFAULT_TOPICS, min_length=1)
    user_events_topics: Annotated[tuple[str, ...], NoDecode] = ("user-events",)
    partitions_ahead: int = Field(default=3, ge=0, le=36)
    store_transactions: bool = True
    max_record_bytes: int = Field(default=1 << 20, ge=1024)

    @field_validator("user_events_topics", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return value
