"""The product search index (``services/search-indexer`` writes it) read back: full text, by id,
by name prefix, and the price listing; and the pure pieces the indexer writes with, so both
sides agree (the tokeniser, the key budgets, the item keys, the price buckets).

- ``_search``: ``ProductSearch`` and its ``SearchHit``;
- ``_table``: ``SearchTable``: the table's reads (items, postings, the ``by-price`` and
  ``by-name`` indexes) over one boto3 client;
- ``_client``: the DynamoDB clients (short timeouts, no retries in botocore; a scan's long one);
- ``_text``: pure: the one tokeniser and the text byte budgets;
- ``_items``: pure: product item keys, the ``by-name`` sort key, ``StoredProduct`` parsing;
- ``_prices``: pure: price buckets and the ranking of hits.
"""

from read_models.errors import InvalidQueryError
from read_models.search._client import SCAN_READ_TIMEOUT_S, make_dynamodb_client
from read_models.search._items import (
    LEGACY_VERSION,
    NAME_KEY_MAX_BYTES,
    PENDING_ATTR,
    PENDING_REV_ATTR,
    PRODUCT_SK,
    TOKENS_HASH_ATTR,
    Item,
    StoredProduct,
    name_key,
    parse_product,
    product_key,
)
from read_models.search._prices import (
    MAX_PRICE_DIGITS,
    price_bucket,
    price_buckets_between,
    rank_key,
)
from read_models.search._search import ProductSearch, SearchHit
from read_models.search._table import SearchTable
from read_models.search._text import (
    DESCRIPTION_MAX_BYTES,
    MAX_TOKENS,
    NAME_MAX_BYTES,
    STOP_WORDS,
    TOKEN_MAX_BYTES,
    all_tokens,
    bound_token,
    document_tokens,
    fold,
    indexed_text,
    normalize_name,
    stem,
    tokenize,
    utf8_prefix,
    words,
)

__all__ = [
    "DESCRIPTION_MAX_BYTES",
    "LEGACY_VERSION",
    "MAX_PRICE_DIGITS",
    "MAX_TOKENS",
    "NAME_KEY_MAX_BYTES",
    "NAME_MAX_BYTES",
    "PENDING_ATTR",
    "PENDING_REV_ATTR",
    "PRODUCT_SK",
    "SCAN_READ_TIMEOUT_S",
    "STOP_WORDS",
    "TOKENS_HASH_ATTR",
    "TOKEN_MAX_BYTES",
    "InvalidQueryError",
    "Item",
    "ProductSearch",
    "SearchHit",
    "SearchTable",
    "StoredProduct",
    "all_tokens",
    "bound_token",
    "document_tokens",
    "fold",
    "indexed_text",
    "make_dynamodb_client",
    "name_key",
    "normalize_name",
    "parse_product",
    "price_bucket",
    "price_buckets_between",
    "product_key",
    "rank_key",
    "stem",
    "tokenize",
    "utf8_prefix",
    "words",
]
