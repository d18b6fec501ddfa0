"""Capture golden Debezium records from the real connector on the embedded stack.

Usage (from the repository root)::

    .venv/bin/python libs/cdc-events/scripts/capture_golden.py [--out DIR] [--only NAME ...]

For each converter configuration below it starts a fresh broker, creates a database on one
logical-decoding PostgreSQL server, runs the workload of ``cdc_events.testing._workload``
(snapshot rows, then streamed transactions), runs the real Debezium PostgreSQL connector through
``devstack.DebeziumRelay`` and writes every interesting record, byte for byte as the broker
returned it, to ``src/cdc_events/testing/golden/<config>-<what>.json``. One relay runs at a time
(each JVM start costs ~5-10 s and a few hundred MB). Every server is stopped before exit.

This script (and the integration tests) are the only places of the library that do I/O.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import devstack
import orjson
from cdc_events.testing._workload import Workload

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "src" / "cdc_events" / "testing" / "golden"
TOPIC_PREFIX = "dbserver1"
# The relay reports what it produced every 0.5 s; the counts are final once they have not moved
# for this long after the last source commit.
_SETTLE_S = 4.0
# The snapshot arrives ~4 s after the relay starts and streaming follows within a second of each
# commit; 90 s covers a loaded two-core machine.
_CAPTURE_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Capture:
    name: str
    description: str
    schemas_enable: bool = True
    decimal_handling_mode: str = "precise"
    extra: dict[str, str] = field(default_factory=dict)
    # Which records to keep: None keeps every kind.
    keep: Callable[[str], bool] | None = None


def _products_only(label: str) -> bool:
    return label.startswith("products-")


CAPTURES = (
    Capture(
        "pg-schema",
        "JSON converter with schemas, decimal.handling.mode=precise, "
        "time.precision.mode=adaptive, transaction metadata, heartbeats, truncate and "
        "logical-decoding messages enabled",
        extra={"skipped.operations": "none"},
    ),
    Capture(
        "pg-noschema",
        "JSON converter without schemas (schemas.enable=false), decimal.handling.mode=precise",
        schemas_enable=False,
    ),
    Capture(
        "pg-string",
        "decimal.handling.mode=string",
        decimal_handling_mode="string",
        keep=_products_only,
    ),
    Capture(
        "pg-double",
        "decimal.handling.mode=double",
        decimal_handling_mode="double",
        keep=_products_only,
    ),
    Capture(
        "pg-connect",
        "time.precision.mode=connect",
        extra={"time.precision.mode": "connect"},
        keep=_products_only,
    ),
)


def _label(topic: str, value: bytes | None, seen: dict[str, int]) -> str | None:
    """A file-name label for a record, or None for records not worth a golden file."""
    if topic.startswith("__debezium-heartbeat."):
        label = "heartbeat"
    elif topic == f"{TOPIC_PREFIX}.transaction":
        status = orjson.loads(value or b"null")
        payload = status.get("payload", status) if isinstance(status, dict) else {}
        # The first transaction (the two inserts) is the one worth keeping: BEGIN and END.
        label = f"transaction-{str(payload.get('status', 'x')).lower()}"
    elif topic == f"{TOPIC_PREFIX}.message":
        label = "message"
    else:
        table = topic.rsplit(".", 1)[-1]
        if value is None:
            label = f"{table}-tombstone"
        else:
            doc = orjson.loads(value)
            payload = doc.get("payload", doc) if isinstance(doc, dict) else {}
            label = f"{table}-{payload.get('op', 'x')}"
    seen[label] = seen.get(label, 0) + 1
    return label if seen[label] == 1 else None


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8")


def _run_sql(server: devstack.PostgresServer, db: str, statements: list[str]) -> None:
    conn = server.connect(db)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        conn.commit()
    finally:
        conn.close()


def _wait_settled(relay: devstack.DebeziumRelay) -> dict[str, int]:
    deadline = time.monotonic() + _CAPTURE_TIMEOUT_S
    last: dict[str, int] = {}
    since = time.monotonic()
    while time.monotonic() < deadline:
        produced = {
            t: n
            for t, n in relay.status().get("produced", {}).items()
            if not t.startswith("__debezium-heartbeat.")
        }
        heartbeat = any(
            t.startswith("__debezium-heartbeat.") for t in relay.status().get("produced", {})
        )
        if produced != last:
            last, since = produced, time.monotonic()
        elif produced and heartbeat and time.monotonic() - since > _SETTLE_S:
            return produced
        time.sleep(0.25)
    raise TimeoutError(f"relay output did not settle: {last}")


def capture(cfg: Capture, pg: devstack.PostgresServer, work: Path) -> dict[str, dict[str, Any]]:
    db = "shop" if cfg.name == "pg-schema" else "shop_" + cfg.name.split("-", 1)[1]
    pg.create_database(db)
    workload = Workload()
    _run_sql(pg, db, workload.setup() + workload.before_snapshot())
    broker = devstack.Broker(work / cfg.name).start()
    slot = db.replace("-", "_")
    relay = devstack.DebeziumRelay.create(
        work / cfg.name,
        bootstrap_servers=broker.bootstrap,
        db_port=pg.port,
        db_name=db,
        topic_prefix=TOPIC_PREFIX,
        schemas_enable=cfg.schemas_enable,
        decimal_handling_mode=cfg.decimal_handling_mode,
        provide_transaction_metadata=True,
        heartbeat_interval_ms=1000,
        slot_name=f"golden_{slot}",
        publication_name=f"golden_{slot}_pub",
        partitions=1,
        extra=cfg.extra,
    )
    try:
        relay.start()
        for tx in workload.transactions():
            _run_sql(pg, db, tx)
        produced = _wait_settled(relay)
        topics = [*produced, f"__debezium-heartbeat.{TOPIC_PREFIX}"]
        records = devstack.read_topic(
            broker.bootstrap,
            topics,
            expected=sum(produced.values()) + 1,
            timeout=_CAPTURE_TIMEOUT_S,
        )
    finally:
        relay.stop()
        broker.stop()
    out: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for rec in sorted(records, key=lambda r: (r.timestamp_ms, r.topic, r.offset)):
        label = _label(rec.topic, rec.value, seen)
        if label is None or (cfg.keep is not None and not cfg.keep(label)):
            continue
        out[f"{cfg.name}-{label}"] = {
            "description": f"{label} captured with {cfg.description}",
            "topic": rec.topic,
            "partition": rec.partition,
            "offset": rec.offset,
            "key": _text(rec.key),
            "value": _text(rec.value),
        }
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=GOLDEN_DIR)
    parser.add_argument("--only", nargs="*", help="capture only these configurations")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        work = Path(tmp)
        pg = devstack.PostgresServer("golden", work, logical=True).start()
        try:
            for cfg in CAPTURES:
                if args.only and cfg.name not in args.only:
                    continue
                records = capture(cfg, pg, work)
                for name, record in records.items():
                    path = args.out / f"{name}.json"
                    path.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")
                print(f"{cfg.name}: {len(records)} records -> {args.out}", flush=True)
        finally:
            pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
