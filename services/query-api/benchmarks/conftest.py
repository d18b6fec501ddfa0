"""The integration tests' seeded stack (``tests/integration/conftest.py``), for the benchmark:
the same read models, seeded by the services' own sinks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_path = Path(__file__).resolve().parents[1] / "tests" / "integration" / "conftest.py"
_spec = importlib.util.spec_from_file_location("query_api_integration_stack", _path)
assert _spec is not None and _spec.loader is not None
_stack = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _stack  # its dataclasses look their module up
_spec.loader.exec_module(_stack)

stack = _stack.stack
READ_KEY = _stack.READ_KEY
