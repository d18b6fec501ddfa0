"""The statistics read model (``services/stats-aggregator`` writes it) read back.

- ``_reader``: ``StatsReader``: a customer's, product's or user's statistics, the products low
  on stock (PostgreSQL);
- ``_inventory``: ``InventoryReader``: a product's availability from the ``inventory-realtime``
  DynamoDB projection.
"""

from read_models.stats._inventory import Availability, InventoryReader
from read_models.stats._reader import KINDS, StatsReader, read_one, read_watermark

__all__ = ["KINDS", "Availability", "InventoryReader", "StatsReader", "read_one", "read_watermark"]
