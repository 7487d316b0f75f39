"""Pages over HTTP: the `limit`, `cursor` and `count` parameters, and the RFC 8288 `Link` header."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response

from ticketdesk.pagination import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT, Page, PageRequest
from ticketdesk.settings import Settings


async def page_request(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"page size, at most {MAX_LIMIT}")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="from the previous page's Link header"),
    ] = None,
    count: Annotated[
        bool, Query(description="true: the total number of matching rows in X-Total-Count")
    ] = False,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor, count=count)


PageParams = Annotated[PageRequest, Depends(page_request)]


def next_link(request: Request, **params: Any) -> str:
    """The `Link` header to the next page: this request's path and query with `params`
    changed, under PUBLIC_URL when it is set, else relative (RFC 8288 resolves it against
    the request's URL). Never built from the Host header, which the client chose."""
    url = request.url.include_query_params(**params)
    target = url.path + (f"?{url.query}" if url.query else "")
    settings: Settings = request.app.state.settings
    if settings.public_url:
        target = settings.base_url + target
    return f'<{target}>; rel="next"'


def add_page_headers(request: Request, response: Response, page: Page[Any]) -> None:
    add_link_headers(request, response, page.next_cursor, page.total)


def add_link_headers(
    request: Request, response: Response, cursor: str | None, total: int | None = None
) -> None:
    if cursor is not None:
        response.headers["Link"] = next_link(request, cursor=cursor)
    if total is not None:
        response.headers["X-Total-Count"] = str(total)
