"""Server time and the health probes."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ticketdesk.db import Engine
from ticketdesk.models import utcnow

router = APIRouter(tags=["system"])


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
    responses={503: {"model": HealthOut, "description": "The database is unreachable"}},
)
async def readyz(engine: Engine) -> HealthOut | JSONResponse:
    """The database answers."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, SQLAlchemyError):
        return JSONResponse({"status": "database unreachable"}, status_code=503)
    return HealthOut(status="ok")
