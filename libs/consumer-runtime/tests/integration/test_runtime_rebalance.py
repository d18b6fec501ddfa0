"""Members join and leave under load: revoked partitions are committed before they move."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack import ManagedProcess, produce

PARTITIONS = 4
CHUNKS = 40
CHUNK = 100  # 4000 records over ~10 s


def _lines(path: Path) -> list[tuple[int, int, int]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        _topic, part, offset, ident = line.split("\t")
        out.append((int(part), int(offset), int(ident)))
    return out


def test_members_join_and_leave_under_load(
    spawn_consumer: Callable[..., tuple[ManagedProcess, int]],
    make_topic: Callable[..., str],
    kafka_bootstrap: str,
    kafka_group: str,
    tmp_path: Path,
    kit: Any,
) -> None:
    topic = make_topic(PARTITIONS)
    total = CHUNKS * CHUNK
    done = threading.Event()

    def load() -> None:
        for i in range(CHUNKS):
            produce(kafka_bootstrap, topic, kit.payloads(CHUNK, start=i * CHUNK))
            time.sleep(0.25)
        done.set()

    files = {name: tmp_path / f"{name}.txt" for name in ("a", "b", "c")}

    def spawn(name: str) -> ManagedProcess:
        proc, _ = spawn_consumer(
            name,
            topic,
            kafka_group,
            SINK_KIND="file",
            SINK_PATH=str(files[name]),
            SINK_DELAY_S="0.02",
            BATCH_SIZE="50",
        )
        return proc

    def progress(name: str) -> Callable[[], bool]:
        start = len(_lines(files[name]))
        return lambda: len(_lines(files[name])) > start + 50

    producer = threading.Thread(target=load, daemon=True)
    a = spawn("a")
    producer.start()
    kit.wait_until(progress("a"), 30, "member a consuming")
    b = spawn("b")
    kit.wait_until(progress("b"), 30, "member b taking over some partitions")
    assert a.stop(timeout=30) == 0, a.log_tail()  # a leaves: its partitions move to b
    c = spawn("c")
    kit.wait_until(progress("c"), 30, "member c taking over some partitions")
    producer.join(60)
    assert done.is_set()

    def union() -> list[tuple[int, int, int]]:
        return [row for f in files.values() for row in _lines(f)]

    kit.wait_until(lambda: len({r[2] for r in union()}) >= total, 60, "every record consumed")
    assert b.stop(timeout=30) == 0, b.log_tail()
    assert c.stop(timeout=30) == 0, c.log_tail()

    rows = union()
    ids = [r[2] for r in rows]
    assert set(ids) == set(range(total))
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    # Graceful rebalances only: every revoke committed what was written, so nothing repeats.
    assert dupes == [], f"{len(dupes)} records delivered twice, e.g. {dupes[:5]}"
    per_partition: dict[int, list[int]] = defaultdict(list)
    for part, offset, _ in rows:
        per_partition[part].append(offset)
    for part, offsets in per_partition.items():
        assert sorted(offsets) == list(range(len(offsets))), f"gap in partition {part}"
    committed = kit.committed(kafka_bootstrap, kafka_group, topic, PARTITIONS)
    assert committed == {p: len(o) for p, o in per_partition.items()}
    for name in ("a", "b", "c"):
        print(name, Counter(r[0] for r in _lines(files[name])))
