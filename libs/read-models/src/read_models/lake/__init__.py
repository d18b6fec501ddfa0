"""The data lake's report tables (``services/analytics-flusher`` materializes them as Apache
Iceberg tables) read back, and where the lake is (``CatalogConfig``, the flusher's too).

- ``_config``: pure: ``CatalogConfig`` and the pyiceberg catalog properties (SQL or Glue);
- ``_glue``: which botocore errors of the Glue catalog mean an outage or a refusal;
- ``_reports``: ``LakeReports``: the report tables listed and read (window filter, limit).
"""

from read_models.lake._config import CatalogConfig
from read_models.lake._glue import access_denied as glue_access_denied
from read_models.lake._glue import unavailable as glue_unavailable
from read_models.lake._reports import REPORT_TABLES, LakeReports, ReportPage

__all__ = [
    "REPORT_TABLES",
    "CatalogConfig",
    "LakeReports",
    "ReportPage",
    "glue_access_denied",
    "glue_unavailable",
]
