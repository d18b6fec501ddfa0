"""The data lake on S3: the only package of the flusher that imports the storage clients
(pyarrow to encode its objects, DuckDB to query them, pyiceberg and SQLAlchemy for the Iceberg
catalog; boto3 through ``sink_kit.aws``); an import-linter contract (``.importlinter``)
enforces it.

``sink`` writes through the ``S3Store`` that ``open_lake`` opens, with the objects encoded by
``_parquet`` (on the uploads' thread, ``_uploads``); ``verify`` reads the lake back through
``LakeMirror``.

- ``_parquet``: report tables as Parquet (and JSON lines), byte for byte reproducibly;
- ``_s3``: the bucket the sink writes to, and its client;
- ``_verify_reads``: what ``cdc dev verify`` reads (the mirrored objects, their versions);
- ``_iceberg``: the lake as Iceberg tables (pyiceberg, a SQL catalog in PostgreSQL), in
  progress: not imported here, the running service does not use it yet.
"""

from typing import TYPE_CHECKING

from analytics_flusher.store._parquet import SCHEMAS, encode_jsonl, encode_parquet
from analytics_flusher.store._s3 import S3Store, open_lake
from analytics_flusher.store._verify_reads import LakeMirror

if TYPE_CHECKING:
    from analytics_flusher.store._verify_reads import SourceConnection as SourceConnection

__all__ = ["SCHEMAS", "LakeMirror", "S3Store", "encode_jsonl", "encode_parquet", "open_lake"]
