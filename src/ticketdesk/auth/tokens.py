"""Token checks without a database round trip, and without weakening revocation.

A process remembers, per token id, the account a token check found valid. It forgets a
token the moment another process (or server) commits a change that could invalidate it:
`repository.py` notifies AUTH_CHANNEL in the changing transaction, and PostgreSQL delivers
the notification to every listening process as it commits. Until the channel listens, or
whenever it is lost, nothing is remembered and every check asks the database, as on SQLite
(which has no channel, and no round trip to save).

A check that read the database while a notification arrived does not remember its answer:
the notification may be about the very row it read (`_generation`).
"""

from __future__ import annotations

import logging

from ticketdesk.auth import repository
from ticketdesk.auth.principal import Account
from ticketdesk.auth.security import TokenClaims
from ticketdesk.db import Database, Db

log = logging.getLogger("ticketdesk")

MAX_REMEMBERED = 50_000
"""Tokens remembered per process; past that, the memory starts over (tokens are re-checked)."""


class TokenChecks:
    """The per-process memory of valid tokens, kept in step by AUTH_CHANNEL."""

    def __init__(self) -> None:
        self._valid: dict[str, Account] = {}
        self._jtis_of: dict[int, set[str]] = {}
        self._generation = 0
        self.listening = False

    def listen(self, database: Database) -> None:
        database.listen(repository.AUTH_CHANNEL, self._notified, self._channel_state)

    def cached(self, claims: TokenClaims) -> Account | None:
        account = self._valid.get(claims.jti)
        if account is not None and account.id == claims.user_id:
            return account
        return None

    async def load(self, db: Db, claims: TokenClaims) -> Account | None:
        """The token's account if the token is valid now, from the database; remembered if so.

        For a token that `cached` did not know: the handle is made only when needed.
        """
        generation = self._generation
        account = await repository.token_account(
            db, user_id=claims.user_id, version=claims.version, jti=claims.jti
        )
        if account is not None and self.listening and generation == self._generation:
            self._remember(claims.jti, account)
        return account

    def _remember(self, jti: str, account: Account) -> None:
        if len(self._valid) >= MAX_REMEMBERED:
            self._forget_all()
        self._valid[jti] = account
        self._jtis_of.setdefault(account.id, set()).add(jti)

    def _forget_all(self) -> None:
        self._generation += 1
        self._valid.clear()
        self._jtis_of.clear()

    def _notified(self, payload: str) -> None:
        self._generation += 1
        kind, _, key = payload.partition(":")
        if kind == "t":
            account = self._valid.pop(key, None)
            if account is not None:
                self._jtis_of.get(account.id, set()).discard(key)
        elif kind == "u" and key.isdigit():
            for jti in self._jtis_of.pop(int(key), ()):
                self._valid.pop(jti, None)
        else:
            self._forget_all()

    def _channel_state(self, listening: bool) -> None:
        # Notifications may have been missed while the channel was down: start over.
        self._forget_all()
        if listening != self.listening:
            log.info(
                "token checks %s",
                "use the process's memory" if listening else "ask the database each time",
            )
        self.listening = listening
