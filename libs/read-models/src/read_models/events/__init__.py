"""The event store read back (``services/event-store-writer`` writes it): a row's history, its
state at a time, the dead-letter rows and their counts.

- ``_reader``: ``EventStoreReader`` (pooled engine, one connection per read) and the
  ``dead_letter_queue`` table's filters the writer's replay and discard commands share;
- ``_history``: the SQL of a row's history and of its table's sweep at a time;
- ``_state``: pure: the stored event, folding a history into the row, parsing keys and times;
- ``_dead_letters``: pure: a dead-letter row, a selection of rows, their headers;
- ``_keys``: pure: a key's stored JSON and hash, the JSON form of values (the writer's too).
"""

from read_models.events._dead_letters import (
    STATUSES,
    DeadLetterRow,
    Headers,
    Selection,
    decode_headers,
)
from read_models.events._keys import JSON_OPTIONS, json_default, key_hash, key_json
from read_models.events._reader import (
    DEAD_LETTER_COLUMNS,
    DEAD_LETTERS,
    EventStoreReader,
    dead_letter_filter,
    dead_letter_row,
    split_table,
    store_errors,
)
from read_models.events._state import (
    HISTORY_ORDER,
    StoredEvent,
    normalise_row,
    parse_key,
    parse_time,
    rebuild_state,
)

__all__ = [
    "DEAD_LETTERS",
    "DEAD_LETTER_COLUMNS",
    "HISTORY_ORDER",
    "JSON_OPTIONS",
    "STATUSES",
    "DeadLetterRow",
    "EventStoreReader",
    "Headers",
    "Selection",
    "StoredEvent",
    "dead_letter_filter",
    "dead_letter_row",
    "decode_headers",
    "json_default",
    "key_hash",
    "key_json",
    "normalise_row",
    "parse_key",
    "parse_time",
    "rebuild_state",
    "split_table",
    "store_errors",
]
