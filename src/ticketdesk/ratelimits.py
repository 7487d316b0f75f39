"""Rate limits: how often one address, account or user may log in, register or write.

Counted with the `limits` library in moving windows: in this process's memory, or in
Redis when REDIS_URL is set, so that every process and server shares one budget. The
HTTP side (the limiter as a dependency, the RateLimit-* headers) is `web/ratelimits.py`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from ticketdesk.errors import TooManyRequests
from ticketdesk.metrics import RATE_LIMITED
from ticketdesk.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool

log = logging.getLogger("ticketdesk")

# A shared store that does not answer at once must not hold up the request it guards.
STORE_TIMEOUT_S = 0.5
"""How long one request may wait for the counters' store, all its checks together."""
STORE_BUDGET: ContextVar[list[float] | None] = ContextVar("store_budget", default=None)
"""The seconds this request may still wait for the store, all its checks together (one
mutable cell, which RequestEdge gives each request)."""


def fresh_store_budget() -> list[float]:
    return [STORE_TIMEOUT_S]


@dataclass(frozen=True, slots=True)
class Rule:
    """A named budget, e.g. `login-ip`: one or more rates, all of which must hold."""

    name: str
    rates: tuple[RateLimitItem, ...]

    @classmethod
    def parse(cls, name: str, text: str) -> Rule:
        return cls(name, tuple(parse_many(text)))


@dataclass(frozen=True, slots=True)
class Quota:
    """What is left of the tightest rate of a rule, for the RateLimit-* headers."""

    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }


class RateLimiter:
    """Counts hits against rules; raises TooManyRequests when one is spent."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits
        self._redis: ConnectionPool | None = None
        self.storage: Storage
        if settings.redis_url:
            # Imported only when used: redis-py adds some 18 MiB to every worker.
            from redis.asyncio import ConnectionPool

            self._redis = ConnectionPool.from_url(
                settings.redis_url,
                socket_timeout=STORE_TIMEOUT_S,
                socket_connect_timeout=STORE_TIMEOUT_S,
            )
            self.storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix=settings.rate_limit_prefix,
                connection_pool=self._redis,  # type: ignore[arg-type]
            )
        else:
            self.storage = MemoryStorage()
        self._windows = MovingWindowRateLimiter(self.storage)
        self.login_per_ip = Rule.parse("login-ip", settings.rate_limit_login_per_ip)
        self.login_per_account = Rule.parse("login-account", settings.rate_limit_login_per_account)
        self.login_failures = Rule.parse("login-failures", settings.rate_limit_login_failures)
        self.register_per_ip = Rule.parse("register-ip", settings.rate_limit_register_per_ip)
        self.writes_per_user = Rule.parse("writes-user", settings.rate_limit_writes_per_user)
        self.reset_per_account = Rule.parse("reset-account", settings.rate_limit_password_reset)
        self.reset_per_ip = Rule.parse("reset-ip", settings.rate_limit_password_reset_per_ip)

    async def hit(self, rule: Rule, key: str) -> Quota | None:
        """Count one request against every rate of the rule; 429 when one is spent."""
        return await self._count(rule, key, consume=True, enforce=True)

    async def check(self, rule: Rule, key: str) -> Quota | None:
        """429 if the rule is spent already, without counting this request."""
        return await self._count(rule, key, consume=False, enforce=True)

    async def record(self, rule: Rule, key: str) -> None:
        """Count an event (a failed login) against the rule; `check` enforces it later."""
        await self._count(rule, key, consume=True, enforce=False)

    async def _count(self, rule: Rule, key: str, *, consume: bool, enforce: bool) -> Quota | None:
        if not self.enabled:
            return None
        budget = STORE_BUDGET.get() or fresh_store_budget()
        if budget[0] <= 0:
            # The store used up this request's time already: do not wait for it again.
            log.error("rate-limit store unavailable (no time left): %s not counted", rule.name)
            return None
        started = time.monotonic()
        try:
            async with asyncio.timeout(budget[0]):
                quota, spent = await self._count_in_store(rule, key, consume=consume)
        except (StorageError, TimeoutError) as exc:
            # Open rather than closed: an outage of the shared store must not lock
            # everyone out. Logged, so that it does not go unnoticed.
            log.error(
                "rate-limit store unavailable (%s): %s not counted", type(exc).__name__, rule.name
            )
            return None
        finally:
            budget[0] -= time.monotonic() - started
        if spent is not None and enforce:
            RATE_LIMITED.labels(rule.name).inc()
            raise TooManyRequests(retry_after_s=max(spent.reset_s, 1), headers=spent.headers())
        return quota

    async def _count_in_store(
        self, rule: Rule, key: str, *, consume: bool
    ) -> tuple[Quota, Quota | None]:
        """The tightest rate's quota, and the spent rate's (the one free again last), if any."""
        tightest: Quota | None = None
        spent: Quota | None = None
        for rate in rule.rates:
            allowed = await (
                self._windows.hit(rate, rule.name, key)
                if consume
                else self._windows.test(rate, rule.name, key)
            )
            reset_at, remaining = await self._windows.get_window_stats(rate, rule.name, key)
            quota = Quota(
                limit=rate.amount,
                remaining=max(remaining, 0),
                reset_s=max(math.ceil(reset_at - time.time()), 0),
            )
            if not allowed and (spent is None or quota.reset_s > spent.reset_s):
                spent = quota
            if tightest is None or quota.remaining < tightest.remaining:
                tightest = quota
        assert tightest is not None  # parse_many never returns no rates
        return tightest, spent

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def tightest(*quotas: Quota | None) -> Quota | None:
    """The quota with the fewest requests left, for the headers of a request under several."""
    known = [q for q in quotas if q is not None]
    return min(known, key=lambda q: q.remaining) if known else None


async def limit_login(limiter: RateLimiter, *, address: str, email: str) -> Quota | None:
    """Logins per address and per account, counted before any hashing; and an account takes
    only so many failures an hour. Unknown emails are counted alike, so the limits do not
    tell which accounts exist."""
    quota = tightest(
        await limiter.hit(limiter.login_per_ip, address),
        await limiter.hit(limiter.login_per_account, email),
    )
    await limiter.check(limiter.login_failures, email)
    return quota


async def limit_reset_request(limiter: RateLimiter, *, address: str, email: str) -> None:
    """Password reset requests per client address, and mails per account (known or not)."""
    await limiter.hit(limiter.reset_per_ip, address)
    await limiter.hit(limiter.reset_per_account, email)
