"""Pure parsing of Debezium change events and user-activity events (no I/O)."""

from cdc_events._errors import ERROR_CODES, CdcEventsError, ParseError

__all__ = ["ERROR_CODES", "CdcEventsError", "ParseError"]
