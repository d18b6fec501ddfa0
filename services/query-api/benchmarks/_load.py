"""A load generator light enough not to be the bottleneck: HTTP/1.1 keep-alive connections on
asyncio streams (uvloop), one pre-encoded GET per connection, responses read by their
``Content-Length``. httpx spends a millisecond or more of CPU per request; on a two-core
machine shared with the server that capped what the server was asked, and its own event loop's
queue was most of the latency measured. This costs tens of microseconds a request.

It runs in a process of its own (``python _load.py``, garbage collection off): in the
benchmark's process, which holds the seeded stack, a collection of that large heap paused the
client for tens of milliseconds and showed up as the server's p99.

Two shapes:

- *closed*: each connection sends its next request when the previous answer arrived, for a
  fixed time (saturation: the server's throughput; latency is then mostly queueing);
- *open*: requests are sent on a fixed schedule (``rate`` a second over all connections), and
  each latency counts from when the request was due, not when it was sent, so a server that
  falls behind shows it (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import uvloop


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct_ms(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    @property
    def failed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)


def _request(host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    status = int((await reader.readline()).split(b" ", 2)[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _run(
    host: str,
    port: int,
    req: bytes,
    connections: int,
    seconds: float,
    rate: float | None,
) -> LoadResult:
    result = LoadResult()
    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]
    start = time.perf_counter()
    deadline = start + seconds

    async def closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (sent := time.perf_counter()) < deadline:
            status = await _exchange(reader, writer, req)
            result.latencies.append(time.perf_counter() - sent)
            result.statuses[status] = result.statuses.get(status, 0) + 1

    async def scheduled(i: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert rate is not None
        interval = connections / rate  # each connection sends every ``interval`` seconds
        due = start + i * interval / connections
        while due < deadline:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status = await _exchange(reader, writer, req)
            result.latencies.append(time.perf_counter() - due)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            due += interval

    if rate is None:
        await asyncio.gather(*(closed(r, w) for r, w in streams))
    else:
        await asyncio.gather(*(scheduled(i, r, w) for i, (r, w) in enumerate(streams)))
    result.seconds = time.perf_counter() - start
    for _, writer in streams:
        writer.close()
    return result


def load(
    url: str,
    path: str,
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
    rate: float | None = None,
) -> LoadResult:
    """``connections`` keep-alive connections to ``url`` asking ``path`` for ``seconds``:
    back to back (``rate`` None) or ``rate`` requests a second in all, on a schedule. The load
    runs in a child process; its result comes back as a JSON file."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        args = {
            "url": url,
            "path": path,
            "headers": headers,
            "connections": connections,
            "seconds": seconds,
            "rate": rate,
            "out": str(out),
        }
        subprocess.run(
            [sys.executable, __file__, json.dumps(args)], check=True, timeout=seconds + 60
        )
        found = json.loads(out.read_bytes())
    return LoadResult(
        latencies=found["latencies"],
        statuses={int(k): v for k, v in found["statuses"].items()},
        seconds=found["seconds"],
    )


def _main(args: dict[str, object]) -> LoadResult:
    gc.disable()
    url = str(args["url"])
    host, _, port = url.removeprefix("http://").partition(":")
    headers = args["headers"]
    assert isinstance(headers, dict)
    req = _request(host, int(port), str(args["path"]), headers)
    rate = args["rate"]
    return uvloop.run(
        _run(
            host,
            int(port),
            req,
            int(str(args["connections"])),
            float(str(args["seconds"])),
            None if rate is None else float(str(rate)),
        )
    )


if __name__ == "__main__":
    _args = json.loads(sys.argv[1])
    Path(_args["out"]).write_text(json.dumps(asdict(_main(_args))))
