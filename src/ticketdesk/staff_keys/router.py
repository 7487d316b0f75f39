from __future__ import annotations

from fastapi import APIRouter, status

from ticketdesk.auth.dependencies import SuperUser
from ticketdesk.db import DbConn, Reads
from ticketdesk.errors import responses
from ticketdesk.ratelimits import WritesLimited
from ticketdesk.schemas import ObjectId
from ticketdesk.staff_keys import service
from ticketdesk.staff_keys.schemas import NewStaffKeyOut, StaffKeyIn, StaffKeyOut

router = APIRouter(prefix="/staff-keys", tags=["staff keys"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 401, 403, 429),
    dependencies=[WritesLimited],
)
async def create_staff_key(
    user: SuperUser, conn: DbConn, body: StaffKeyIn | None = None
) -> NewStaffKeyOut:
    """Issue a single-use key for registering one staff user; the key is shown only here."""
    expires_at = body.expires_at if body else None
    key, row = await service.create_key(conn, created_by=user.id, expires_at=expires_at)
    return NewStaffKeyOut(key=key, **row)


@router.get("", responses=responses(401, 403))
async def list_staff_keys(user: SuperUser, db: Reads) -> list[StaffKeyOut]:
    """All staff keys, used or not, without their secrets."""
    return [StaffKeyOut(**row) for row in await service.list_keys(db)]


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(400, 401, 403, 404, 429),
    dependencies=[WritesLimited],
)
async def delete_staff_key(key_id: ObjectId, user: SuperUser, conn: DbConn) -> None:
    """Withdraw a staff key."""
    await service.delete_key(conn, key_id)
