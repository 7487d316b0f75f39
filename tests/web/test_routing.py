"""Routes compiled at start-up answer as FastAPI's own handler would; the route index finds
the route FastAPI's list would find."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.routing import Match

from ticketdesk.app import create_app
from ticketdesk.settings import Settings
from ticketdesk.web.dispatch import RouteIndex
from ticketdesk.web.routing import Route

CALLS: list[str] = []


async def counted() -> int:
    CALLS.append("counted")
    return len(CALLS)


def sync_dependency(flag: Annotated[bool, Query()] = False) -> str:
    return "on" if flag else "off"


async def needs_header(x_token: Annotated[str, Header()]) -> str:
    if x_token == "refuse":
        from fastapi import HTTPException

        raise HTTPException(403, "refused by a dependency")
    return x_token


async def with_yield() -> Any:
    yield 1


class Filters(BaseModel):
    status: list[str] = []
    size: int = Field(10, ge=1, le=50)
    page: int = 1


class Strict(BaseModel):
    model_config = {"extra": "forbid"}

    kind: list[str] = Field(default=[], alias="type")
    q: str | None = Field(None, max_length=5)
    flag: bool | None = None


class Item(BaseModel):
    name: str = Field(max_length=5)
    count: int = 1
    note: str | None = None


class Out(BaseModel):
    name: str
    count: int
    note: str | None = None
    extra: str = "default"


def make_app(route_class: type[APIRoute]) -> FastAPI:
    router = APIRouter(route_class=route_class)

    @router.get("/things/{thing_id}", response_model_exclude_unset=True)
    async def read(
        thing_id: int,
        first: Annotated[int, Depends(counted)],
        again: Annotated[int, Depends(counted)],
        mode: Annotated[str, Depends(sync_dependency)],
        token: Annotated[str, Depends(needs_header)],
        filters: Annotated[Filters, Query()],
        response: Response,
    ) -> Out:
        response.headers["x-mode"] = mode
        if thing_id == 7:
            response.status_code = 203
        return Out(name=f"{thing_id}:{first}:{again}:{token}", count=filters.size, note=None)

    @router.get("/strict")
    async def strict(filters: Annotated[Strict, Query()]) -> dict[str, Any]:
        return filters.model_dump()

    @router.post("/things", status_code=201, responses={400: {}})
    async def create(item: Item, request: Request) -> Out:
        return Out(name=item.name, count=item.count, note=request.headers.get("x-note"))

    @router.delete("/things/{thing_id}", status_code=204)
    async def delete(thing_id: int) -> None:
        return None

    @router.get("/raw")
    async def raw() -> Response:
        return Response(b"raw", media_type="text/plain", status_code=202)

    @router.get("/mapping")
    async def mapping() -> dict[str, Any]:
        return {"a": [1, 2], "b": None}

    app = FastAPI()
    app.router.routes.extend(router.routes)  # as `create_app` puts them, one list
    return app


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/things/3", {"headers": {"x-token": "t"}}),
    ("GET", "/things/7?flag=true&status=a&status=b&size=20", {"headers": {"x-token": "t"}}),
    ("GET", "/things/abc", {"headers": {"x-token": "t"}}),
    ("GET", "/things/3?size=0&flag=maybe", {}),
    ("GET", "/things/3?size=0&page=x", {"headers": {"x-token": "t"}}),
    ("GET", "/things/abc?size=99", {}),
    ("GET", "/things/3", {"headers": {"x-token": "refuse"}}),
    ("GET", "/things/3?size=5&size=6&status=&other=1&other=2", {"headers": {"x-token": "t"}}),
    ("GET", "/strict", {}),
    ("GET", "/strict?type=a&type=b&q=&flag=yes", {}),
    ("GET", "/strict?kind=a", {}),
    ("GET", "/strict?q=toolong&flag=maybe&extra=1&extra=2", {}),
    ("GET", "/strict?type=", {}),
    ("POST", "/things", {"json": {"name": "abc", "count": 2}, "headers": {"x-note": "n"}}),
    ("POST", "/things", {"json": {"name": "too long", "count": "x"}}),
    ("POST", "/things", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
    ("POST", "/things", {"content": b"", "headers": {"content-type": "application/json"}}),
    ("POST", "/things", {"content": b"name=a", "headers": {"content-type": "text/plain"}}),
    ("POST", "/things", {"json": [1, 2]}),
    ("DELETE", "/things/5", {}),
    ("GET", "/raw", {}),
    ("GET", "/mapping", {}),
]


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def answer(app: FastAPI, method: str, path: str, options: dict[str, Any]) -> Any:
    CALLS.clear()
    async with client(app) as http:
        response = await http.request(method, path, **options)
    headers = {k: v for k, v in response.headers.items() if k != "date"}
    return response.status_code, headers, response.content, list(CALLS)


@pytest.mark.parametrize(("method", "path", "options"), REQUESTS)
async def test_a_compiled_route_answers_as_fastapis_handler(
    method: str, path: str, options: dict[str, Any]
) -> None:
    compiled, generic = make_app(Route), make_app(APIRoute)
    ours_routes = [route for route in compiled.routes if isinstance(route, Route)]
    assert len(ours_routes) == 6
    assert all(route.compiled for route in ours_routes)
    ours = await answer(compiled, method, path, options)
    assert ours == await answer(generic, method, path, options)
    assert ours[0] in (200, 201, 202, 203, 204, 400, 403, 422)


async def test_routes_the_steps_do_not_cover_keep_fastapis_handler() -> None:
    router = APIRouter(route_class=Route)

    @router.get("/yield")
    async def uses_yield(value: Annotated[int, Depends(with_yield)]) -> int:
        return value

    @router.get("/sync")
    def sync_endpoint() -> int:
        return 1

    @router.get("/plain")
    async def plain() -> int:
        return 1

    compiled = {route.path: route.compiled is not None for route in router.routes}  # type: ignore[attr-defined]
    assert compiled == {"/yield": False, "/sync": False, "/plain": True}
    app = FastAPI()
    app.include_router(router)
    async with client(app) as http:
        answers = [(await http.get(path)).json() for path in ("/yield", "/sync", "/plain")]
    assert answers == [1, 1, 1]


def sample_paths(app: FastAPI) -> list[str]:
    paths = {"/", "/nowhere", "/tickets/x/y/z", "//", "/app", "/app/", "/tickets/"}
    for route in app.routes:
        path = getattr(route, "path", "/")
        paths.add(path.replace("{", "").replace("}", "").replace(":path", ""))
        paths.add(path.replace("{ticket_id}", "12").replace("{user_id}", "3"))
    return sorted(paths)


def first_match(routes: list[Any], scope: dict[str, Any]) -> tuple[Any, Any]:
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route, Match.FULL
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial, Match.PARTIAL if partial else Match.NONE


def test_the_index_finds_the_route_the_whole_list_finds(tmp_path: Any) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db", jwt_key="k" * 48
    )
    app = create_app(settings)
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    index._build()
    assert len(index.by_segment["tickets"].routes) < len(app.router.routes) / 4
    checked = 0
    for path in sample_paths(app):
        for method in ("GET", "POST", "PUT", "DELETE", "HEAD"):
            scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
            segment = path[1:].split("/", 1)[0]
            part = index.by_segment.get(segment, index.others)
            assert first_match(part.routes, scope) == first_match(app.router.routes, scope), (
                method,
                path,
            )
            checked += 1
    assert checked > 300


def test_a_model_of_query_parameters_is_read_by_the_steps_worked_out_once() -> None:
    from starlette.datastructures import QueryParams

    from ticketdesk.web.routing import _model_reader

    route = next(r for r in make_app(Route).routes if getattr(r, "path", "") == "/strict")
    read = _model_reader(route.dependant.query_params)  # type: ignore[attr-defined]
    assert read is not None
    assert read(QueryParams("type=a&type=b&q=")) == {"filters": Strict(type=["a", "b"], q="")}
    assert read(QueryParams("q=toolong")) is None  # an error: FastAPI's reading reports it
    assert read(QueryParams("unknown=1")) is None  # extra forbidden
