"""A short chaos run through the CLI (`cdc dev chaos`, what `make chaos` runs): while the
simulator writes, services are SIGKILLed and restarted, the Debezium relay is killed and
restarted, the broker and the AWS emulator are paused, the sink PostgreSQL is stopped and a
replica joins and leaves a consumer group; and faults overlap: a rebalance while a store is
down, a kill while a batch waits out a failure, a zombie (SIGSTOP past the session timeout,
then SIGCONT), AWS throttling answers, clocks that lie (times in 2099, 1970 and year 1 on user
events, source rows and the source's commit time), and all along records that parse but every
store refuses. Afterwards every committed change is in the broker, every read model equals the
source database, every refused record is in each consumer's dead-letter topic, neither the
statistics' as-of nor the lake's lateness froze, no service exited on its own and no process is
left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from devstack.chaos import FAULT_KINDS, OVERLAP_KINDS

# Fixed, so a failure replays: `cdc dev chaos --seed 11 --duration 270 --rate 40 --kills 2`.
SEED = 11
# A schedule that holds every fault (2 kills, a relay restart, a 10 s broker pause, a 15 s sink
# PostgreSQL stop, a 15 s AWS pause, a replica added and removed) and the overlapping ones (with
# ~30 s of skewed clocks and the as-of coming back, and a relay that loses its offsets and
# snapshots again).
DURATION_S = 270
# The search indexer writes through the AWS emulator (~100 product changes/s on 2 cores): at
# 40 transactions/s (~50 product changes/s) it catches up after each outage within the run.
RATE = 40


@pytest.mark.timeout(900)
def test_chaos_run_converges_and_leaves_nothing_behind(stack_dir: Path) -> None:
    cdc = Path(sys.executable).with_name("cdc")
    result = subprocess.run(
        [
            str(cdc),
            "dev",
            "chaos",
            "--duration",
            str(DURATION_S),
            "--rate",
            str(RATE),
            "--kills",
            "2",
            "--seed",
            str(SEED),
            "--work-dir",
            str(stack_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=840,
        env={**os.environ, "COLUMNS": "160"},
    )
    log = result.stderr
    assert log.splitlines()[0].startswith(f"chaos seed {SEED}"), log[:500]
    assert result.stdout, log[-4000:]
    outcome = json.loads(result.stdout)
    failing = [c for c in (outcome["verification"] or {}).get("checks", []) if not c["ok"]]
    assert result.returncode == 0, (failing, log[-4000:])
    assert outcome["ok"]

    # Every kind of fault happened, as often as asked, and each was undone.
    assert set(outcome["kinds_injected"]) == set(FAULT_KINDS) | set(OVERLAP_KINDS)
    assert outcome["kinds_injected"]["service_kill"] == 2
    assert all(f["done"] and f["error"] is None for f in outcome["faults"])
    assert {f["kind"]: f["duration_s"] for f in outcome["faults"]}["sink_stop"] >= 15
    # No service or relay exited on its own.
    assert outcome["unexpected_exits"] == []
    # Records every store refuses kept coming; each consumer dead-lettered every one of them.
    assert outcome["refused"] > 0
    assert outcome["refused_missing"] == []
    # Clocks lied (far ahead and far behind); the as-of came back onto the clock and the lake
    # counted no on-time record late.
    clocks = outcome["clocks"]
    assert clocks["ok"], clocks["problems"]
    assert clocks["observation"]["as_of_back_after_s"] is not None
    assert clocks["observation"]["copies"] > 0

    # Every committed change reached the broker (a relay restart may re-emit, never lose). The
    # relay also lost its offsets once and snapshotted again: the changes of that gap reach the
    # CDC topics folded into the new snapshot's reads (a row changed ten times is one read, one
    # deleted is none), so a CDC topic may hold fewer records than changes were committed and
    # the read models' verification says whether anything is missing; user events (produced by
    # the simulator, not the relay) are still counted one by one.
    assert outcome["flow_ok"] and outcome["resnapshot"]
    assert all(e["in_broker"] > 0 and e["committed"] > 0 for e in outcome["events"])
    users = [e for e in outcome["events"] if e["topic"] == "user-events"]
    assert users and all(e["in_broker"] == e["committed"] for e in users)
    assert outcome["verification"]["ok"]
    assert outcome["time_to_converge_s"] is not None

    leftovers = [
        p.info
        for p in psutil.process_iter(["pid", "cmdline"])
        if any(str(stack_dir) in part for part in (p.info["cmdline"] or []))
    ]
    assert leftovers == []
