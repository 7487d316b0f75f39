"""Server time and the health probes."""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ticketdesk.db import Database
from ticketdesk.models import utcnow

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
