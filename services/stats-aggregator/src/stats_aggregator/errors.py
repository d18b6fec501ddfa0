"""The stats aggregator's exception root (operator-facing failures of the CLI and start-up)."""

from __future__ import annotations


class StatsAggregatorError(Exception):
    """Something the operator must fix; the message says what."""
