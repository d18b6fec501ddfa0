"""Settings of the row counter, read once from the environment by ``SERVICE.run()``.

The runtime's variables (``KAFKA_*``, ``BATCH_*``, ...) and the sink database's
(``DATABASE_URL``, ``DB_POOL_*``: ``sink_kit.postgres.PostgresSinkSettings``); ``KAFKA_TOPICS``
defaults to every change topic of the shop database.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import NoDecode
from sink_kit.postgres import PostgresSinkSettings

NAME = "row-counter"
DEFAULT_TOPICS = (r"^dbserver1\.public\..*",)


class Settings(PostgresSinkSettings):
    kafka_topics: Annotated[tuple[str, ...], NoDecode] = Field(default=DEFAULT_TOPICS, min_length=1)
