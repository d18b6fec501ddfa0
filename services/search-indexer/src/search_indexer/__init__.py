"""Maintains a version-guarded DynamoDB product search index and answers product searches.

The service consumes ``dbserver1.public.products`` (``python -m search_indexer``) and keeps one
item per product plus token postings in the ``product-search-index`` table; ``ProductSearch``
(``read_models.search``, re-exported) answers full-text, by-id and by-name-prefix queries over
it (also as ``cdc search``).
"""

from read_models.search import (
    MAX_TOKENS,
    ProductSearch,
    SearchHit,
    document_tokens,
    normalize_name,
    tokenize,
)

from search_indexer._items import StoredProduct, table_definition
from search_indexer._metrics import IndexMetrics
from search_indexer.domain import (
    Deletion,
    Folded,
    Product,
    ProductChange,
    decode,
    fold,
    price_bucket,
    price_buckets_between,
)
from search_indexer.errors import InvalidQueryError, SearchIndexerError
from search_indexer.settings import Settings
from search_indexer.sink import SearchIndexSink
from search_indexer.store import IndexTable, prepare_table

__all__ = [
    "MAX_TOKENS",
    "Deletion",
    "Folded",
    "IndexMetrics",
    "IndexTable",
    "InvalidQueryError",
    "Product",
    "ProductChange",
    "ProductSearch",
    "SearchHit",
    "SearchIndexSink",
    "SearchIndexerError",
    "Settings",
    "StoredProduct",
    "decode",
    "document_tokens",
    "fold",
    "normalize_name",
    "prepare_table",
    "price_bucket",
    "price_buckets_between",
    "table_definition",
    "tokenize",
]
