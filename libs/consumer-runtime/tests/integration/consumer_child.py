"""A consumer service used by the integration tests, run as its own process (to be killed).

``SINK_KIND=file``: appends ``topic partition offset id`` lines to ``SINK_PATH`` with fsync,
commit-after-flush. ``SINK_KIND=pg``: rows and offsets in one PostgreSQL transaction
(``SINK_DSN``), sink-managed. ``SINK_DELAY_S`` slows every batch down (so kills land mid-batch).
Everything else is the runtime's own settings from the environment.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import orjson
import psycopg2
from consumer_runtime import (
    BaseSink,
    Batch,
    CommitStrategy,
    Message,
    Offsets,
    RetryableError,
    RuntimeSettings,
    TopicPartition,
    run_service,
)


class ChildSettings(RuntimeSettings):
    sink_kind: str = "file"
    sink_path: str = ""
    sink_dsn: str = ""
    sink_delay_s: float = 0.0


class Rec:
    __slots__ = ("id", "offset", "partition", "source_ts_ms", "topic")

    def __init__(self, message: Message, value: dict[str, int]) -> None:
        self.topic = message.topic() or ""
        self.partition = message.partition() or 0
        self.offset = message.offset() or 0
        self.id = value["id"]
        self.source_ts_ms = message.timestamp()[1]


def decode(message: Message) -> Rec:
    return Rec(message, orjson.loads(message.value() or b"null"))


class FileSink(BaseSink[Rec]):
    def __init__(self, path: str, delay_s: float) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._delay_s = delay_s

    def write_batch(self, batch: Batch[Rec]) -> Offsets | None:
        time.sleep(self._delay_s)
        lines = "".join(f"{r.topic}\t{r.partition}\t{r.offset}\t{r.id}\n" for r in batch)
        os.write(self._fd, lines.encode())
        os.fsync(self._fd)
        return None

    def close(self) -> None:
        os.close(self._fd)


class PgSink(BaseSink[Rec]):
    def __init__(self, dsn: str, delay_s: float) -> None:
        self._conn = psycopg2.connect(dsn)
        self._delay_s = delay_s
        with self._conn, self._conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS events (topic text, part int, kafka_offset bigint,"
                " id bigint)"
            )
            cur.execute(
                "CREATE TABLE IF NOT EXISTS offsets (topic text, part int,"
                " next_offset bigint, PRIMARY KEY (topic, part))"
            )

    def write_batch(self, batch: Batch[Rec]) -> Offsets | None:
        try:
            with self._conn, self._conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO events VALUES (%s, %s, %s, %s)",
                    [(r.topic, r.partition, r.offset, r.id) for r in batch],
                )
                time.sleep(self._delay_s)
                cur.executemany(
                    "INSERT INTO offsets VALUES (%s, %s, %s) ON CONFLICT (topic, part)"
                    " DO UPDATE SET next_offset = EXCLUDED.next_offset",
                    [(tp.topic, tp.partition, o) for tp, o in batch.next_offsets.items()],
                )
        except psycopg2.OperationalError as exc:
            raise RetryableError(f"database unavailable: {exc}") from exc
        return None

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> Offsets:
        with self._conn, self._conn.cursor() as cur:
            cur.execute("SELECT topic, part, next_offset FROM offsets")
            rows = {TopicPartition(t, p): o for t, p, o in cur.fetchall()}
        return {tp: rows[tp] for tp in partitions if tp in rows}

    def close(self) -> None:
        self._conn.close()


def main() -> int:
    def factory(s: ChildSettings) -> BaseSink[Rec]:
        if s.sink_kind == "pg":
            return PgSink(s.sink_dsn, s.sink_delay_s)
        return FileSink(s.sink_path, s.sink_delay_s)

    strategy = (
        CommitStrategy.SINK_MANAGED
        if os.environ.get("SINK_KIND") == "pg"
        else CommitStrategy.COMMIT_AFTER_FLUSH
    )
    return run_service(
        os.environ.get("SERVICE_NAME", "child"), ChildSettings, decode, factory, strategy=strategy
    )


if __name__ == "__main__":
    sys.exit(main())
