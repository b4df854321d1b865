"""Throttling of guesses: passwords at sign-in and on /me/password, and TOTP codes.

Three counters per attempt, each with its own limit in one window:
- (account, address): the low limit (`BILLING_LOGIN_MAX_FAILURES`): one guesser, one account;
- account, any address: higher (`BILLING_LOGIN_ACCOUNT_MAX_FAILURES`): guessing spread over
  many addresses, without letting one address lock the account for everyone at five;
- address, any account: a ceiling (`BILLING_LOGIN_ADDRESS_MAX_FAILURES`) against one address
  trying many accounts. An account that has signed in from that address before (within
  `BILLING_LOGIN_KNOWN_ADDRESS_DAYS`) is exempt, so people behind one office NAT are not
  locked out by someone else's guessing.

An attempt is counted *before* the secret is checked (a reservation), so under any number of
concurrent attempts at most the limit are ever checked; a success then clears the account's
counts and hands back its reservation on the address. Keys are HMACs of what they count:
an email typed into the form (or a card number typed by mistake) is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.throttle.stores import (
    Check,
    CounterStore,
    DatabaseCounterStore,
    RedisCounterStore,
)
from app.core.config import Settings


@dataclass(frozen=True, slots=True)
class Attempt:
    """An admitted attempt (retry_after None) or a refused one (seconds to wait)."""

    retry_after: int | None
    pair_key: str
    account_key: str
    address_key: str
    known_key: str
    address_counted: bool


class LoginThrottle:
    def __init__(self, store: CounterStore, settings: Settings) -> None:
        self.store = store
        self.window = settings.login_window_seconds
        self.pair_limit = settings.login_max_failures
        self.account_limit = settings.login_account_max_failures
        self.address_limit = settings.login_address_max_failures
        self.known_seconds = settings.login_known_address_days * 24 * 3600
        secret = (settings.secret_key or settings.signing_key).encode()
        self._hmac_key = hmac.new(secret, b"billing-portal throttle keys v1", "sha256").digest()

    def key(self, *parts: str) -> str:
        message = "\x1f".join(parts).encode()
        return hmac.new(self._hmac_key, message, hashlib.sha256).hexdigest()

    async def admit(
        self, scope: str, account: str, address: str, *, session: AsyncSession | None = None
    ) -> Attempt:
        """Count an attempt at `scope` ("sign-in", "password", "totp") on `account` (an
        email as typed, or a user id) from `address`, and say whether it may be checked."""
        account = account.strip().lower()
        pair, acct = self.key(scope, "pair", account, address), self.key(scope, "acct", account)
        addr, known = self.key(scope, "addr", address), self.key("known", account, address)
        checks = [
            Check(pair, self.window, self.pair_limit),
            Check(acct, self.window, self.account_limit),
            # Last: an account known at this address is exempt from the address ceiling.
            Check(addr, self.window, self.address_limit),
        ]
        admission = await self.store.admit(checks, exempt_if=known, session=session)
        return Attempt(admission.retry_after, pair, acct, addr, known, admission.last_counted)

    async def succeeded(self, attempt: Attempt, *, session: AsyncSession | None = None) -> None:
        """The secret was right: forget the account's failures, give back the address its
        reservation, and remember the address as one this account uses."""
        await self.store.settle(
            clear=[attempt.pair_key, attempt.account_key],
            refund=[attempt.address_key] if attempt.address_counted else [],
            mark=(attempt.known_key, self.known_seconds),
            session=session,
        )

    async def aclose(self) -> None:
        await self.store.aclose()


def create_login_throttle(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> LoginThrottle:
    if settings.redis_url:
        redis = Redis.from_url(settings.redis_url, decode_responses=True)
        return LoginThrottle(RedisCounterStore(redis), settings)
    return LoginThrottle(DatabaseCounterStore(sessionmaker), settings)


__all__ = ["Attempt", "LoginThrottle", "create_login_throttle"]
