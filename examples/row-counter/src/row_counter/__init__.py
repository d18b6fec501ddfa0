"""Example consumer: counts the changes of each source table in PostgreSQL, exactly once.

The smallest service of the platform's shape (``docs/adding-a-service.md``): ``python -m
row_counter`` runs ``service.SERVICE``; ``domain.decode`` and ``RowCountSink`` are its parts.
"""

from row_counter.domain import decode
from row_counter.sink import RowCountSink

__all__ = ["RowCountSink", "decode"]
