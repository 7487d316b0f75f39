"""Staff keys, for superusers: each lets one new member of staff sign up, once."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response

from ticketdesk.models import utcnow
from ticketdesk.pages.common import SameOrigin, page_router
from ticketdesk.pages.rendering import redirect, render
from ticketdesk.pages.session import Counted, Superuser
from ticketdesk.staff_keys import service as staff_keys
from ticketdesk.web.routing import DbHandle

router = page_router()

KEY_LIFETIME = timedelta(days=7)
"""How long a key issued on this page works (the page says seven days)."""


@router.get("/app/staff-keys")
async def key_list(request: Request, viewer: Superuser, db: DbHandle) -> Response:
    keys = await staff_keys.list_keys(db)
    return render(request, "staff_keys.html", {"viewer": viewer, "keys": keys, "new_key": None})


@router.post("/app/staff-keys", dependencies=[SameOrigin, Counted])
async def issue_key(request: Request, viewer: Superuser, db: DbHandle) -> Response:
    key, _row = await staff_keys.create_key(
        db, created_by=viewer.id, expires_at=utcnow() + KEY_LIFETIME
    )
    keys = await staff_keys.list_keys(db)
    # Shown once, on this answer only: not a redirect, so it never sits in a URL or history.
    return render(request, "staff_keys.html", {"viewer": viewer, "keys": keys, "new_key": key})


@router.post("/app/staff-keys/{key_id}/withdraw", dependencies=[SameOrigin, Counted])
async def withdraw_key(request: Request, key_id: int, viewer: Superuser, db: DbHandle) -> Response:
    await staff_keys.delete_key(db, key_id)
    return redirect(request, "/app/staff-keys")
