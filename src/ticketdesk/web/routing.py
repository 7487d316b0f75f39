"""The route class of every API and page endpoint: the request's handle is finished in it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from ticketdesk.db.request import REQUEST_DB


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
