"""Loading the golden records (``golden/*.json``) shipped with the package.

Each file holds one Kafka record as received: ``topic``, ``partition``, ``offset``, ``key`` and
``value`` as the exact strings (``null`` for a null key or value), and a ``description``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

from cdc_events._model import Record
from cdc_events._parser import Parser, parse_record


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """A Kafka record as a consumer receives it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    name: str = ""
    description: str = ""

    def parse(self, parser: Parser | None = None) -> Record:
        """``parse_record`` of this record (with ``parser`` if given)."""
        if parser is None:
            return parse_record(
                self.topic, self.partition, self.offset, self.key, self.value, self.headers
            )
        return parser.parse_record(
            self.topic, self.partition, self.offset, self.key, self.value, self.headers
        )

    def json(self) -> Any:
        """The value's JSON document, for tests that inspect or mutate the raw record."""
        return None if self.value is None else orjson.loads(self.value)


def _encode(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


@functools.cache
def golden_records() -> dict[str, KafkaRecord]:
    """Every golden record by name (the file name without ``.json``), sorted by name."""
    folder = resources.files("cdc_events.testing").joinpath("golden")
    out: dict[str, KafkaRecord] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        doc = orjson.loads(entry.read_bytes())
        name = entry.name.removesuffix(".json")
        out[name] = KafkaRecord(
            topic=doc["topic"],
            partition=doc["partition"],
            offset=doc["offset"],
            key=_encode(doc["key"]),
            value=_encode(doc["value"]),
            headers=tuple((h, v.encode()) for h, v in doc.get("headers", {}).items()),
            name=name,
            description=doc["description"],
        )
    return out


def golden(name: str) -> KafkaRecord:
    """One golden record, e.g. ``golden("pg-schema-products-u")``."""
    records = golden_records()
    if name not in records:
        raise KeyError(f"no golden record {name!r}; known: {', '.join(records)}")
    return records[name]
