"""Test tiers are folders: a test's folder gives its marker, so `-m unit` etc. select by tier.

``tests/unit`` -> unit, ``tests/integration`` -> integration, ``tests/e2e`` -> e2e,
``benchmarks`` -> benchmark. A test outside these folders is an error, so nothing runs untiered.
"""

from __future__ import annotations

import pytest

_TIERS = {"unit": "unit", "integration": "integration", "e2e": "e2e", "benchmarks": "benchmark"}


# Run order, for time (not correctness): every test of a session shares the shop database and
# its CDC topics, and the search indexer re-indexes the whole product history through the AWS
# emulator, whose writes are slow; it runs before the other services' simulators add history.
_FIRST = ("services/search-indexer/",)


def _order(item: pytest.Item) -> int:
    path = item.path.as_posix()
    return 0 if any(f"/{p}" in path for p in _FIRST) else 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_order)  # stable: everything else keeps its collection order
    for item in items:
        parts = item.path.parts
        tier = next((_TIERS[p] for p in reversed(parts) if p in _TIERS), None)
        if tier is None:
            raise pytest.UsageError(
                f"{item.nodeid}: put the test under tests/unit, tests/integration, tests/e2e "
                "or benchmarks/ so it gets its tier marker"
            )
        item.add_marker(getattr(pytest.mark, tier))
