"""A reset link by mail, valid 30 minutes and once; using it sets the password and signs
out every session. Whether an address has an account is never told, not even by how long
the answer takes: a request is answered before anything depends on the address."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from urllib.parse import urlencode

from ticketdesk.auth import repository as auth_repository
from ticketdesk.auth import service as auth
from ticketdesk.auth.security import hash_password
from ticketdesk.db import Database, Db
from ticketdesk.errors import BadRequest, DatabaseUnavailable, ServiceBusy, StatementTimeout
from ticketdesk.jobs import repository as jobs
from ticketdesk.jobs.repository import NewJob
from ticketdesk.mail.outbound import Mail
from ticketdesk.models import utcnow
from ticketdesk.password_reset import repository
from ticketdesk.settings import Settings

log = logging.getLogger("ticketdesk")

VALID_FOR = timedelta(minutes=30)
INVALID_LINK = "this link is unknown, used or expired: ask for a new one"
PAGE = "/app/password-reset/confirm"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_reset(
    database: Database, *, email: str, settings: Settings
) -> Callable[[], Awaitable[None]] | None:
    """What mails the account of `email` (already normalized) a link, if there is such an
    account: for the caller to run once the answer is sent (None: no mail can go).

    Looking the account up, keeping the link and queueing its mail take time only a known
    address costs; done before the answer, that time told which addresses have accounts.
    So the request does nothing with the address that the answer waits for, and is the
    same work for every address. The price: a link that cannot be made (the database is
    away) is logged, not told; asking again makes another.
    """
    if not settings.mail_enabled:
        log.warning("a password reset was asked for, but no mail can be sent (SMTP_HOST)")
        return None
    return partial(mail_link, database, email=email, settings=settings)


RETRY_FOR_S = 60.0
"""How long a link waits for the database to come back before it is given up (logged)."""


async def mail_link(database: Database, *, email: str, settings: Settings) -> None:
    """Keep a new link of the account of `email`, if any, and queue its mail, in a
    transaction of its own (nobody waits for it to raise). While the database is away (a
    restart), it tries again for up to RETRY_FOR_S: the asker was told a link is coming."""
    delay = 0.25
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            async with database.session() as db:
                await _mail_link(db, email=email, settings=settings)
            return
        except (DatabaseUnavailable, StatementTimeout, ServiceBusy):
            if time.monotonic() + delay > deadline:
                log.error("a password reset link could not be made: the database stayed away")
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)
        except Exception:
            log.exception("a password reset link could not be made")
            return


async def _mail_link(db: Db, *, email: str, settings: Settings) -> None:
    user = await repository.active_user(db, email)
    if user is None:
        return
    token = secrets.token_urlsafe(32)
    now = utcnow()
    reset_id = await repository.insert_reset(
        db, user_id=user.id, token_hash=_hash(token), now=now, expires_at=now + VALID_FOR
    )
    link = f"{settings.base_url}{PAGE}?{urlencode({'token': token})}"
    mail = Mail(
        to=user.email,
        to_name=user.username,
        subject="Set a new password",
        template="password_reset",
        context={"link": link, "minutes": int(VALID_FOR.total_seconds() // 60)},
        message_id=f"reset.{reset_id}@{settings.reply_domain}",
        secret=True,
    )
    await jobs.queue(db, [NewJob(f"reset:{reset_id}", "mail", mail.model_dump_json())], now=now)


async def link_works(db: Db, *, token: str) -> bool:
    """Whether a link's token would set a password now, without using it up: the page of a
    used or expired link says so before anyone types a new password."""
    return await repository.usable(db, token_hash=_hash(token), now=utcnow())


async def confirm_reset(db: Db, *, token: str, password: str) -> int:
    """Set the password of the link's account; every earlier token is revoked. The user id."""
    new_hash = await hash_password(password)
    user_id = await repository.spend(db, token_hash=_hash(token), now=utcnow())
    if user_id is None:
        raise BadRequest(INVALID_LINK)
    await auth_repository.set_password_hash(db, user_id=user_id, password_hash=new_hash)
    await auth.revoke_all_tokens(db, user_id=user_id)
    return user_id
