from __future__ import annotations

from fastapi import APIRouter, status

from ticketdesk.auth.dependencies import SuperUser
from ticketdesk.schemas import ObjectId
from ticketdesk.staff_keys import service
from ticketdesk.staff_keys.schemas import NewStaffKeyOut, StaffKeyIn, StaffKeyOut
from ticketdesk.web.errors import responses
from ticketdesk.web.ratelimits import WritesLimited
from ticketdesk.web.routing import DbHandle, Route

router = APIRouter(prefix="/staff-keys", tags=["staff keys"], route_class=Route)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 401, 403, 429),
    dependencies=[WritesLimited],
)
async def create_staff_key(
    user: SuperUser, db: DbHandle, body: StaffKeyIn | None = None
) -> NewStaffKeyOut:
    """Issue a single-use key for registering one staff user; the key is shown only here."""
    expires_at = body.expires_at if body else None
    key, row = await service.create_key(db, created_by=user.id, expires_at=expires_at)
    return NewStaffKeyOut(key=key, **row._asdict())


@router.get("", responses=responses(401, 403))
async def list_staff_keys(user: SuperUser, db: DbHandle) -> list[StaffKeyOut]:
    """All staff keys, used or not, without their secrets."""
    return [StaffKeyOut(**row._asdict()) for row in await service.list_keys(db)]


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(400, 401, 403, 404, 429),
    dependencies=[WritesLimited],
)
async def delete_staff_key(key_id: ObjectId, user: SuperUser, db: DbHandle) -> None:
    """Withdraw a staff key."""
    await service.delete_key(db, key_id)
