"""The request's database handle for endpoints, and the route class that finishes it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from ticketdesk.db import Db
from ticketdesk.db.request import REQUEST_DB, request_db


class Route(APIRoute):
    """Commits the request's transaction once the response is made, before it is sent.

    An error answer (status 400 and above) rolls back instead, as does an exception; a
    failing commit raises, and the error handlers answer it (503 for an outage).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_then_finish(request: Request) -> Response:
            try:
                response = await handle(request)
            except BaseException:
                db = request.scope.pop(REQUEST_DB, None)
                if db is not None:
                    await db.finish(commit=False)
                raise
            db = request.scope.pop(REQUEST_DB, None)
            if db is not None:
                await db.finish(commit=response.status_code < 400)
            return response

        return handle_then_finish


async def _db(request: Request) -> Db:
    return request_db(request)


DbHandle = Annotated[Db, Depends(_db)]
"""The request's database handle, for an endpoint's parameters."""

DATABASE_DEPENDENCY = _db
"""The dependency through which an operation reaches the database (for its OpenAPI 503)."""


class MultipartRoute(Route):
    """A route that takes only multipart/form-data bodies, beside a JSON route on the same
    path and method: requests of any other type pass on to that one.

    Its form is documented on the JSON route's operation (`openapi_extra`), as one
    operation with two kinds of body.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and not _is_multipart(scope):
            return Match.NONE, {}
        return match, child


def _is_multipart(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value.lower().startswith(b"multipart/form-data"))
    return False
