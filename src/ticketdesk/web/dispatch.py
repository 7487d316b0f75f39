"""Finding a request's route by its path's first segment, instead of trying every route.

FastAPI tries an app's routes in turn, and each try costs a few microseconds: a request for
a route near the end of the list (`/healthz` is the 70th) paid more to be routed than its
endpoint cost. `RouteIndex` keeps, for each first segment of a path (`tickets`, `users`,
`app`, ...), the routes that could match a path beginning with it — the routes with that
literal first segment and those whose first segment is a parameter — in their order in the
app, and lets FastAPI's own matching run over those alone. A route no path of a segment can
match is never tried for it; every other route is tried in the same order as before, so the
route chosen, a 405's and a 404's answers are FastAPI's own.
"""

from __future__ import annotations

from fastapi.routing import APIRouter
from starlette._utils import get_route_path
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

_ANY = None
"""The key of routes whose first segment is not a literal (`/{name}`, `/`, a bare mount)."""


def _first_segment(path: str) -> str:
    end = path.find("/", 1)
    return path[1:] if end < 0 else path[1:end]


def _key(route: BaseRoute) -> str | None:
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path.startswith("/"):
        return _ANY
    segment = _first_segment(path)
    if not segment or "{" in segment:
        return _ANY
    return segment


class RouteIndex:
    """The ASGI app an app's router runs: its routes looked up by first segment.

    Built from the router's routes at the first request, and again whenever their number
    changes (a route added later is found as well).
    """

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.size = -1
        self.by_segment: dict[str, APIRouter] = {}
        self.others = router

    def _build(self) -> None:
        routes = list(self.router.routes)
        keys = [_key(route) for route in routes]
        segments = {key for key in keys if key is not _ANY}
        self.by_segment = {
            segment: self._part(
                [route for route, key in zip(routes, keys, strict=True) if key in (segment, _ANY)]
            )
            for segment in segments
        }
        self.others = self._part(
            [route for route, key in zip(routes, keys, strict=True) if key is _ANY]
        )
        self.size = len(routes)

    def _part(self, routes: list[BaseRoute]) -> APIRouter:
        """A router over some of the app's routes that answers as the app's router does."""
        part = APIRouter(redirect_slashes=self.router.redirect_slashes)
        part.routes[:] = routes
        part.default = self.router.default
        part._low_priority_routes = self.router._low_priority_routes
        part.form_limits = self.router.form_limits
        return part

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router.app(scope, receive, send)
            return
        if len(self.router.routes) != self.size:
            self._build()
        scope.setdefault("router", self.router)  # url_for looks in all the app's routes
        part = self.by_segment.get(_first_segment(get_route_path(scope)), self.others)
        await part.app(scope, receive, send)


def index_routes(router: APIRouter) -> None:
    """Make `router` find its routes through a `RouteIndex`."""
    router.middleware_stack = RouteIndex(router)
