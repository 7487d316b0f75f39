"""The handle of one HTTP request, kept in its ASGI scope from its first statement to its end.

`web/routing.py` finishes it when the endpoint has produced its response, before that is
sent: the transaction commits (or, for an error, rolls back) and the connection goes back,
so a 2xx means committed, and no connection waits on a slow client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticketdesk.db.handle import Db

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

REQUEST_DB = "ticketdesk.db"
"""Where in the ASGI scope a request keeps its handle."""


def request_db(request: HTTPConnection) -> Db:
    """The request's handle, made at its first use."""
    db: Db | None = request.scope.get(REQUEST_DB)
    if db is None:
        db = request.scope[REQUEST_DB] = request.app.state.database.handle()
    return db
