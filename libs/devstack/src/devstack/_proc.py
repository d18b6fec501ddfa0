"""Child-process supervision for the embedded stack.

Every server of the stack (broker, PostgreSQL, AWS emulator, Debezium relay, services) runs as a
child process started here. Children die with their parent (``PR_SET_PDEATHSIG``) so a crashed
test session or a SIGKILLed ``make up`` leaves no process behind, and each child can be paused
(SIGSTOP) and resumed to simulate an outage without losing its in-memory state.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1") -> None:
    """Block until something accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on {host}:{port} after {timeout:.0f}s"
                ) from None
            time.sleep(0.05)


def wait_until(
    check: Callable[[], T], timeout: float, interval: float = 0.25, message: str = "condition"
) -> T:
    """Call ``check`` until it returns something truthy; return that, or raise TimeoutError.

    For convergence in tests ("the sink equals the ground truth"), where lag cannot be read
    exactly from the embedded broker: poll the outcome itself, then assert on it.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not reached within {timeout:.0f}s")
        time.sleep(interval)


def _die_with_parent(sig: int) -> Callable[[], None]:
    def _set() -> None:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig)

    return _set


class ManagedProcess:
    """A child process with a log file, a stop sequence and pause/resume."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
        parent_death_signal: int = signal.SIGKILL,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.parent_death_signal = parent_death_signal
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._popen.pid

    def start(self) -> ManagedProcess:
        if self.running:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._popen = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            user=self.user,
            # Own process group: a terminal Ctrl-C reaches only the supervisor, which then stops
            # the children in order instead of all of them dying at once.
            start_new_session=True,
            preexec_fn=_die_with_parent(self.parent_death_signal),  # noqa: PLW1509
        )
        return self

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._popen.wait(timeout)

    def signal(self, sig: int) -> None:
        if self.running:
            assert self._popen is not None
            os.kill(self._popen.pid, sig)

    def pause(self) -> None:
        """SIGSTOP: the process keeps its state but answers nothing (an outage)."""
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, no clean-up: a crash."""
        if self._popen is None:
            return
        if self.running:
            self._popen.kill()
        self._popen.wait()
        self._close_log()

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop politely, then SIGKILL if the process outlives ``timeout`` seconds."""
        if self._popen is None:
            return None
        if self.running:
            self.signal(signal.SIGCONT)  # a paused process cannot act on the stop signal
            self.signal(self.stop_signal)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        self._close_log()
        return self._popen.returncode

    def wait_or_kill(self, timeout: float) -> int | None:
        """Wait for a process already told to stop; SIGKILL it after ``timeout`` seconds.

        Never signals it again: for our consumers a second SIGTERM means "exit now, skip the
        final flush".
        """
        if self._popen is None:
            return None
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()
        self._close_log()
        return self._popen.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
