"""Pure parsing of Debezium change events and user-activity events (no I/O).

``parse_record`` turns one Kafka record of a Debezium topic into a ``ChangeEvent``,
``Tombstone``, ``Heartbeat``, ``TransactionBoundary`` or ``SchemaChange``;
``parse_user_activity`` turns one front-end event into a validated ``UserActivity``. Malformed
input raises ``ParseError`` with a stable ``code``. ``source_version`` gives a change's place in
its row's history as text that sorts byte-wise, for version-guarded sinks (``Versions`` keeps what
the first transaction after a snapshot needs; ``sweep_version`` deletes what a new snapshot did
not read). ``integer_id`` reads
a changed row's integer id (key, else row); ``SHOP_COLUMN_TYPES`` declares the shop's decimal
and timestamp columns for schemaless topics.
``cdc_events.testing`` holds golden records captured from the real connector and builders for
hand-made events.
"""

from cdc_events._column_types import ColumnTypes, DecimalColumn
from cdc_events._errors import ERROR_CODES, CdcEventsError, ParseError
from cdc_events._model import (
    NORMALISED_KEYS,
    UNCHANGED,
    BinlogPosition,
    ChangeEvent,
    Heartbeat,
    Record,
    SchemaChange,
    Source,
    Tombstone,
    TransactionBoundary,
    TransactionInfo,
    normalise,
)
from cdc_events._parser import DEFAULT_MAX_BYTES, Parser, parse_record
from cdc_events._payload import SHOP_COLUMN_TYPES, integer_id
from cdc_events._user_activity import EVENT_TYPES, UserActivity, parse_user_activity
from cdc_events._version import (
    LAST_READS,
    Versions,
    snapshot_point_of,
    source_version,
    sweep_version,
)
from cdc_events._view import ChangeView

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ERROR_CODES",
    "EVENT_TYPES",
    "LAST_READS",
    "NORMALISED_KEYS",
    "SHOP_COLUMN_TYPES",
    "UNCHANGED",
    "BinlogPosition",
    "CdcEventsError",
    "ChangeEvent",
    "ChangeView",
    "ColumnTypes",
    "DecimalColumn",
    "Heartbeat",
    "ParseError",
    "Parser",
    "Record",
    "SchemaChange",
    "Source",
    "Tombstone",
    "TransactionBoundary",
    "TransactionInfo",
    "UserActivity",
    "Versions",
    "integer_id",
    "normalise",
    "parse_record",
    "parse_user_activity",
    "snapshot_point_of",
    "source_version",
    "sweep_version",
]
