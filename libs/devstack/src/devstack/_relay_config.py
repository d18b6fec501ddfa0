"""Configuration of the Debezium relay, shared by the launcher and the relay process."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict


class RelayConfig(BaseModel):
    """What a Kafka Connect deployment of the Debezium PostgreSQL connector would be given."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str
    db_host: str = "127.0.0.1"
    db_port: int
    db_name: str = "shop"
    db_user: str = "postgres"
    topic_prefix: str = "dbserver1"
    schema_include_list: str | None = "public"
    table_include_list: str | None = None
    slot_name: str = "dbserver1_slot"
    publication_name: str = "dbserver1_pub"
    schemas_enable: bool = True
    provide_transaction_metadata: bool = False
    heartbeat_interval_ms: int = 0
    decimal_handling_mode: Literal["precise", "string", "double"] = "precise"
    snapshot_mode: str = "initial"
    partitions: int = 3
    offsets_file: Path
    status_file: Path
    # Anything else a Debezium user would set (e.g. "time.precision.mode").
    extra: dict[str, str] = {}

    def debezium_properties(self) -> dict[str, str]:
        schemas = "true" if self.schemas_enable else "false"
        props = {
            "name": f"{self.topic_prefix}-relay",
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "offset.storage": "org.apache.kafka.connect.storage.FileOffsetBackingStore",
            "offset.storage.file.filename": str(self.offsets_file),
            # Flush source offsets every second: a hard-killed relay re-emits at most ~1 s of
            # changes on restart (at-least-once, as with Kafka Connect).
            "offset.flush.interval.ms": "1000",
            # The engine waits this long for more changes when its queue is empty (500 ms by
            # default): every change waited up to that long before it reached the broker.
            "poll.interval.ms": "100",
            "database.hostname": self.db_host,
            "database.port": str(self.db_port),
            "database.user": self.db_user,
            "database.password": "",
            "database.dbname": self.db_name,
            "topic.prefix": self.topic_prefix,
            "plugin.name": "pgoutput",
            "slot.name": self.slot_name,
            "publication.name": self.publication_name,
            "publication.autocreate.mode": "all_tables",
            "snapshot.mode": self.snapshot_mode,
            "decimal.handling.mode": self.decimal_handling_mode,
            "provide.transaction.metadata": str(self.provide_transaction_metadata).lower(),
            "tombstones.on.delete": "true",
            "key.converter.schemas.enable": schemas,
            "value.converter.schemas.enable": schemas,
            "converter.schemas.enable": schemas,
        }
        if self.schema_include_list:
            props["schema.include.list"] = self.schema_include_list
        if self.table_include_list:
            props["table.include.list"] = self.table_include_list
        if self.heartbeat_interval_ms:
            props["heartbeat.interval.ms"] = str(self.heartbeat_interval_ms)
        props.update(self.extra)
        return props
