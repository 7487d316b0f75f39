"""The data layer: statements compiled once per dialect, and the request-scoped handle."""

from ticketdesk.db.database import Database, open_database
from ticketdesk.db.failures import UniqueViolation
from ticketdesk.db.handle import Db, Row, row_as_json
from ticketdesk.db.statements import Statement, constants

__all__ = [
    "Database",
    "Db",
    "Row",
    "Statement",
    "UniqueViolation",
    "constants",
    "open_database",
    "row_as_json",
]
