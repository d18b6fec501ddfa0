"""The index table in DynamoDB: the only package of the indexer that imports the storage client
(boto3, botocore); an import-linter contract (``.importlinter``) enforces it.

- the DynamoDB clients (the writes' short timeouts, the sweep scans' long one) are
  ``read_models.search``'s ``make_dynamodb_client``, re-exported;
- ``_table``: ``IndexTable``: the reads of ``read_models.search.SearchTable``, its scans and
  sweep floor, and the table's creation;
- ``_writes``: its conditional writes (transactions, the large protocol's single items) and
  their guards.
"""

from read_models.search import SCAN_READ_TIMEOUT_S, make_dynamodb_client

from search_indexer.store._table import IndexTable, prepare_table
from search_indexer.store._writes import POSTING_CONDITION, product_guard

__all__ = [
    "POSTING_CONDITION",
    "SCAN_READ_TIMEOUT_S",
    "IndexTable",
    "make_dynamodb_client",
    "prepare_table",
    "product_guard",
]
