from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request, status

from ticketdesk.password_reset import service
from ticketdesk.password_reset.schemas import ResetAccepted, ResetConfirm, ResetRequest
from ticketdesk.schemas import normalize_email
from ticketdesk.settings import AppSettings
from ticketdesk.web.errors import responses
from ticketdesk.web.ratelimits import Limiter, client_address, limit_reset_request
from ticketdesk.web.routing import DbHandle, Route

router = APIRouter(prefix="/password-reset", tags=["auth"], route_class=Route)

ACCEPTED = "if an account has this address, a link to set a new password is on its way"


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses=responses(400, 429))
async def request_reset(
    body: ResetRequest,
    settings: AppSettings,
    limiter: Limiter,
    request: Request,
    after_answer: BackgroundTasks,
) -> ResetAccepted:
    """Mail a link to set a new password, valid 30 minutes and once. The answer is the same,
    and as quick, whether the address has an account or not."""
    email = normalize_email(body.email)
    await limit_reset_request(limiter, address=client_address(request), email=email)
    later = service.request_reset(request.app.state.database, email=email, settings=settings)
    if later is not None:
        after_answer.add_task(later)
    return ResetAccepted(detail=ACCEPTED)


@router.post("/confirm", status_code=status.HTTP_204_NO_CONTENT, responses=responses(400, 429))
async def confirm_reset(
    body: ResetConfirm, db: DbHandle, limiter: Limiter, request: Request
) -> None:
    """Set the new password with the link's token; every session of the account ends."""
    await limiter.hit(limiter.reset_per_ip, client_address(request))
    await service.confirm_reset(db, token=body.token, password=body.password)
