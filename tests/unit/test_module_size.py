"""Small files with one job: no source module is over 400 lines, and there are no exceptions.

A module past the limit is usually two modules; split it by role, not in the middle of a concept.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 400
SOURCES = ("libs/*/src", "services/*/src", "k8s/operator/src", "examples/*/src")


def _modules() -> dict[str, int]:
    out: dict[str, int] = {}
    for pattern in SOURCES:
        for src in ROOT.glob(pattern):
            for path in src.rglob("*.py"):
                out[path.relative_to(ROOT).as_posix()] = len(path.read_text().splitlines())
    return out


MODULES = _modules()


def test_no_source_module_is_over_the_limit() -> None:
    assert len(MODULES) > 100  # the sources were found
    over = {p: n for p, n in MODULES.items() if n > LIMIT}
    assert not over, f"modules over {LIMIT} lines (split them by role): {over}"
