from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from ticketdesk.auth.dependencies import SuperUser
from ticketdesk.jobs.repository import JobRow
from ticketdesk.pagination import DEFAULT_LIMIT, MAX_LIMIT
from ticketdesk.schemas import MAX_ID, ObjectId
from ticketdesk.settings import AppSettings
from ticketdesk.web.errors import responses
from ticketdesk.web.pagination import next_link
from ticketdesk.web.ratelimits import WritesLimited
from ticketdesk.web.routing import DbHandle, Route
from ticketdesk.webhooks import service
from ticketdesk.webhooks.schemas import (
    DeliveryOut,
    NewWebhookOut,
    WebhookCall,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=Route)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 401, 403, 429),
    dependencies=[WritesLimited],
)
async def create_webhook(
    body: WebhookCreate, user: SuperUser, db: DbHandle, settings: AppSettings
) -> NewWebhookOut:
    """Send every event of the given kinds to `url`, signed; the secret is shown only here."""
    row, secret = await service.create(db, data=body, created_by=user.id, settings=settings)
    return NewWebhookOut(secret=secret, **WebhookOut.of(row).model_dump())


@router.get("", responses=responses(401, 403))
async def list_webhooks(user: SuperUser, db: DbHandle) -> list[WebhookOut]:
    """Every endpoint, without its secret."""
    return [WebhookOut.of(row) for row in await service.list_all(db)]


@router.get("/{webhook_id}", responses=responses(400, 401, 403, 404))
async def get_webhook(webhook_id: ObjectId, user: SuperUser, db: DbHandle) -> WebhookOut:
    """One endpoint, its state, and why it was paused or disabled if it was."""
    return WebhookOut.of(await service.get(db, webhook_id))


@router.patch(
    "/{webhook_id}", responses=responses(400, 401, 403, 404, 429), dependencies=[WritesLimited]
)
async def update_webhook(
    webhook_id: ObjectId, body: WebhookUpdate, user: SuperUser, db: DbHandle, settings: AppSettings
) -> WebhookOut:
    """Change the URL or the kinds, or enable (resume) an endpoint again."""
    row = await service.update(db, webhook_id=webhook_id, data=body, settings=settings)
    return WebhookOut.of(row)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(400, 401, 403, 404, 429),
    dependencies=[WritesLimited],
)
async def delete_webhook(webhook_id: ObjectId, user: SuperUser, db: DbHandle) -> None:
    """Remove the endpoint and its deliveries."""
    await service.delete(db, webhook_id)


def _delivery(row: JobRow) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        event_id=row.event_id,
        status=row.status,
        attempts=row.attempts,
        response_code=row.last_code,
        last_error=row.last_error,
        next_attempt_at=row.run_at if row.status == "queued" else None,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


@router.get("/{webhook_id}/deliveries", responses=responses(400, 401, 403, 404))
async def list_deliveries(
    webhook_id: ObjectId,
    user: SuperUser,
    db: DbHandle,
    request: Request,
    response: Response,
    before: Annotated[int, Query(ge=1, le=MAX_ID, description="ids below this one")] = MAX_ID,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> list[DeliveryOut]:
    """The endpoint's deliveries, newest first; a full page has a `Link` to the next."""
    rows = await service.deliveries(db, webhook_id=webhook_id, before=before, limit=limit)
    if len(rows) == limit:
        response.headers["Link"] = next_link(request, before=rows[-1].id, limit=limit)
    return [_delivery(row) for row in rows]


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(400, 401, 403, 404, 409, 429),
    dependencies=[WritesLimited],
)
async def retry_delivery(
    webhook_id: ObjectId, delivery_id: ObjectId, user: SuperUser, db: DbHandle
) -> None:
    """Send a failed (or done) delivery again, now, with a fresh schedule of retries."""
    await service.retry(db, webhook_id=webhook_id, delivery_id=delivery_id)


calls = APIRouter()
"""What ticketdesk sends to endpoints: the OpenAPI document's `webhooks` section."""


@calls.post(
    "ticket-event",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={204: {"description": "any 2xx: delivered; anything else is retried"}},
)
async def ticket_event(body: WebhookCall) -> None:
    """Each event of a kind the endpoint subscribes to, POSTed as JSON and signed per the
    Standard Webhooks specification: headers `webhook-id` (the same for every retry of one
    delivery), `webhook-timestamp` (Unix seconds) and `webhook-signature`
    (`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" under the secret>`). Answer 2xx,
    the whole answer within 10 s (only the status counts: at most 64 KiB of the body is
    read); anything else is tried again after about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and
    10 h, after which the delivery fails and the endpoint is disabled. After 10 failed calls
    in a row the endpoint is paused: its calls wait, and one is tried again after 5 min,
    then 10, 20, 40 and every 60 min; the first that goes through resumes the rest. At most
    2 calls to one endpoint are in flight at once. Redirects are not followed. Deliveries
    may come more than once (use `webhook-id` to tell)."""
