"""What every area of the pages builds on: its router, the same-site check of its forms,
and the one-screen share of a list that a page shows."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ticketdesk.pages.rendering import PageRoute, same_origin
from ticketdesk.pagination import PageRequest


def page_router() -> APIRouter:
    """An area's routes: pages (their errors are pages too), left out of the API's schema."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)


SameOrigin = Depends(same_origin)
"""For a form's `dependencies`: refused unless sent from this site's own pages."""


def rows(limit: int, cursor: str | None = None) -> PageRequest:
    """A page's share of a list: `limit` rows from `cursor` on. A page never shows a total,
    so none is counted (counting a long list is slow)."""
    return PageRequest(limit=limit, cursor=cursor, count=False)
