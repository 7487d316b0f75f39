"""Server time and the health probes."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from ticketdesk.auth.dependencies import bearer_token
from ticketdesk.db import Database
from ticketdesk.errors import NotFound, TicketdeskError, Unauthorized
from ticketdesk.metrics import exposition, queue_registry
from ticketdesk.models import utcnow
from ticketdesk.overview.service import figures as queue_figures
from ticketdesk.settings import Settings

log = logging.getLogger("ticketdesk")
router = APIRouter(tags=["system"])

READY_TIMEOUT = 2.0
"""Seconds /readyz waits for the database: probes give up soon, and so does it."""


class TimeOut(BaseModel):
    time: datetime


class HealthOut(BaseModel):
    status: str


@router.get("/time")
async def server_time() -> TimeOut:
    """The server's current time, UTC."""
    return TimeOut(time=utcnow())


@router.get("/healthz")
async def healthz() -> HealthOut:
    """The process is up."""
    return HealthOut(status="ok")


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus's text format, for a scraper holding METRICS_TOKEN (404 while it is unset)."""
    settings: Settings = request.app.state.settings
    if settings.metrics_token is None:
        raise NotFound("metrics are off: set METRICS_TOKEN")
    given = bearer_token(request.headers.get("authorization")) or ""
    if not secrets.compare_digest(
        given.encode(), settings.metrics_token.get_secret_value().encode()
    ):
        raise Unauthorized("metrics need `Authorization: Bearer <METRICS_TOKEN>`")
    database: Database = request.app.state.database
    try:
        async with asyncio.timeout(READY_TIMEOUT), database.session() as db:
            queue = await queue_figures(db)
    except (TicketdeskError, TimeoutError, OSError):
        queue = None  # the database is away: the rest of the figures still come
    extra = queue_registry(*queue) if queue is not None else None
    return Response(exposition(extra), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/readyz",
    response_model=HealthOut,
    responses={
        503: {
            "model": HealthOut,
            "description": f"The database did not answer in {READY_TIMEOUT:g} s",
        }
    },
)
async def readyz(request: Request) -> HealthOut | JSONResponse:
    """The connection pool reaches the database."""
    database: Database = request.app.state.database
    problem = await database.problem(READY_TIMEOUT)
    if problem is not None:
        log.warning("not ready: the database is unreachable: %s", problem)
        return JSONResponse({"status": "database unreachable"}, status_code=503)
    return HealthOut(status="ok")
