"""Password hashing and tokens, without HTTP."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, tzinfo

import jwt
import pytest

from ticketdesk.auth import security
from ticketdesk.errors import Unauthorized

KEY = b"k" * 64


async def test_passwords_are_hashed_with_argon2id_at_19_mib_and_two_passes() -> None:
    hashed = await security.hash_password("correct horse")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await security.verify_password(hashed, "correct horse")
    assert not await security.verify_password(hashed, "wrong horse")
    assert not await security.verify_password("not a hash", "correct horse")


async def test_hashing_runs_in_a_bounded_pool_of_low_priority_threads() -> None:
    pool = security._hashing_pool()
    assert pool._max_workers == security.HASHING_THREADS == 1
    niceness = await security._off_the_loop(os.getpriority, os.PRIO_PROCESS, 0)
    assert niceness >= security.HASHING_NICENESS
    assert os.getpriority(os.PRIO_PROCESS, 0) < niceness  # the event loop keeps its priority


async def test_hashing_does_not_block_the_event_loop() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await asyncio.gather(*(security.hash_password("pw") for _ in range(4)))
    ticker.cancel()
    assert ticks >= 5


def test_tokens_round_trip_and_are_hs256() -> None:
    token, claims = security.create_token(user_id=7, version=3, key=KEY, lifetime_seconds=60)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    decoded = security.decode_token(token, KEY)
    assert (decoded.user_id, decoded.version, decoded.jti) == (7, 3, claims.jti)


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_algorithms_are_refused(algorithm: str) -> None:
    payload = {"sub": "7", "ver": 0, "jti": "j", "iat": 0, "exp": 2**40}
    token = jwt.encode(payload, KEY, algorithm=algorithm)
    with pytest.raises(Unauthorized):
        security.decode_token(token, KEY)


def test_staff_keys_are_stored_as_sha256() -> None:
    assert security.hash_key("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    token, claims = security.create_token(user_id=7, version=0, key=KEY, lifetime_seconds=60)
    assert security.decode_token(token, KEY) == claims  # verified, and remembered

    class Later(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Later:
            return cls.fromtimestamp(claims.expires_at.timestamp() + 1, tz)

    monkeypatch.setattr(security, "datetime", Later)
    with pytest.raises(Unauthorized):
        security.decode_token(token, KEY)


def test_overlong_tokens_are_refused_before_verification() -> None:
    with pytest.raises(Unauthorized):
        security.decode_token("a." * 5000, KEY)
