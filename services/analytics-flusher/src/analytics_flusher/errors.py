"""The flusher's exception root. Storage and HTTP failures are wrapped here (or mapped to the
runtime's ``RetryableError`` in ``sink``) so handlers never catch botocore or urllib errors."""

from __future__ import annotations

from consumer_runtime import FencedError


class AnalyticsFlusherError(Exception):
    """Root of the flusher's own errors."""


class HttpSinkUnavailable(AnalyticsFlusherError):
    """The analytics API did not accept a summary after every attempt (5xx, 429, no route)."""


class UnencodableValueError(AnalyticsFlusherError):
    """A change holds a value no column of its report can take (``_encodable``). Raised as the
    cause of the ``RejectedError`` that refuses its batch, so the dead letter names it."""


class SchemaMismatchError(AnalyticsFlusherError):
    """A change holds a value its Iceberg changes table's column cannot take (the source
    column's type changed; ``store._iceberg._evolve``). Raised as the cause of the
    ``RejectedError`` that refuses its batch, so the dead letter names it."""


class UnwritablePartError(AnalyticsFlusherError):
    """A closed window part could not be written, and retrying cannot help: its Parquet could
    not be encoded (a bug: every record was checked when it was received) or the store refused
    the object for good (permissions, a missing bucket, a refusal).

    Not retried, not dead-lettered, nothing dropped: the process stops (the runtime exits 1
    without committing past the part), and its records are read again after the restart.
    """


class FencedCommitError(AnalyticsFlusherError, FencedError):
    """An append to an Iceberg changes table refused because a writer of a higher consumer-group
    generation has written one of its partitions (``store._iceberg``): this writer missed a
    rebalance. Nothing of the append is stored, and it is never retried by the committer.

    It is the runtime's ``FencedError`` (a ``RetryableError``, not a ``PermanentError``: the
    records are valid, and a permanent error would dead-letter them): the runtime retries the
    batch with the partitions paused until the rebalance sheds them. ``partitions`` names what
    the table records for each fenced partition: ``(topic, partition) -> (next offset,
    generation)``.
    """

    def __init__(self, message: str, partitions: dict[tuple[str, int], tuple[int, int]]) -> None:
        super().__init__(message)
        self.partitions = partitions


class LakeReadError(AnalyticsFlusherError):
    """A read of the Iceberg tables failed (``store._iceberg._read``, the ``cdc lake``
    commands): the catalog database or the warehouse unreachable, a table that does not exist,
    a query DuckDB refused. The message is one line that names what to fix."""


class UnknownSnapshotError(LakeReadError):
    """A snapshot id that no table of the namespace has (``--as-of SNAPSHOT_ID``)."""
