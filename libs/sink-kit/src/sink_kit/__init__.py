"""Building blocks the services' ``sink`` modules share, so no service writes them twice.

``sink_kit.postgres``: engine with a bounded pool, COPY of rows, the ``consumer_offsets`` table
of the sink-managed commit strategy, schema migrations under an advisory lock, and database
errors mapped to the runtime's ``RetryableError``.
``sink_kit.upsert``: one-statement batch upserts (``INSERT ... SELECT FROM unnest ... ON
CONFLICT``) for sinks that fold a batch to one row per key.
``sink_kit.aws``: boto3 clients for AWS / LocalStack / the emulator, AWS errors mapped to
``RetryableError``, version-guarded DynamoDB writes and table creation from a definition.

Only services' ``sink`` modules import these (see ``.importlinter``): the storage clients stay
at the edge.
"""

__all__: list[str] = []
