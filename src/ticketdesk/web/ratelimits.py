"""Rate limits at the HTTP edge: the limiter as a dependency, the caller's address, the
RateLimit-* headers, and each user's budget of writes. The counting is `ratelimits.py`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from ticketdesk.auth.dependencies import CurrentUser
from ticketdesk.ratelimits import (
    STORE_BUDGET,
    Quota,
    RateLimiter,
    Rule,
    fresh_store_budget,
    limit_login,
    limit_reset_request,
    tightest,
)

__all__ = [
    "STORE_BUDGET",
    "Quota",
    "RateLimiter",
    "Rule",
    "fresh_store_budget",
    "limit_login",
    "limit_reset_request",
    "tightest",
]


def client_address(request: Request) -> str:
    """The caller's address: the peer, or what a trusted proxy said (FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


async def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


Limiter = Annotated[RateLimiter, Depends(_limiter)]


def add_quota_headers(response: Response, quota: Quota | None) -> None:
    if quota is not None:
        response.headers.update(quota.headers())


async def limit_writes(user: CurrentUser, request: Request, response: Response) -> None:
    """Each user's budget of writes (RATE_LIMIT_WRITES_PER_USER).

    The limiter is taken from the app, not as a dependency of its own: every write pays
    for each dependency FastAPI solves, and with limits off this is all the work there is.
    """
    limiter: RateLimiter = request.app.state.rate_limiter
    if limiter.enabled:
        add_quota_headers(response, await limiter.hit(limiter.writes_per_user, str(user.id)))


WritesLimited = Depends(limit_writes)
"""For a write route's `dependencies=[...]`: counts the request against its user's budget."""
