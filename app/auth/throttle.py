"""Sign-in throttling: after N failures in a window, further attempts wait.

Failures are counted per account (the email as typed, so unknown accounts throttle the
same way and reveal nothing) and per address. The count lives in the database by default
and in Redis when `BILLING_REDIS_URL` is set, so replicas share it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.repository import LoginFailureRepository
from app.core.clock import utcnow


class LoginThrottle(Protocol):
    async def retry_after(self, session: AsyncSession, keys: Sequence[str]) -> int | None:
        """Seconds to wait when any key has reached the limit, else None."""
        ...

    async def record_failure(self, session: AsyncSession, keys: Sequence[str]) -> None: ...

    async def reset(self, session: AsyncSession, key: str) -> None: ...

    async def aclose(self) -> None: ...


class DatabaseLoginThrottle:
    def __init__(self, *, max_failures: int, window_seconds: int) -> None:
        self.max_failures = max_failures
        self.window = timedelta(seconds=window_seconds)

    async def retry_after(self, session: AsyncSession, keys: Sequence[str]) -> int | None:
        now = utcnow()
        since = now - self.window
        worst: int | None = None
        failures = LoginFailureRepository(session)
        for key in keys:
            recent = await failures.recent(key, since, self.max_failures)
            if len(recent) >= self.max_failures:
                # Free again once the oldest of the last N failures leaves the window.
                wait = math.ceil((recent[-1] + self.window - now).total_seconds())
                worst = max(worst or 0, wait, 1)
        return worst

    async def record_failure(self, session: AsyncSession, keys: Sequence[str]) -> None:
        now = utcnow()
        failures = LoginFailureRepository(session)
        await failures.add(list(keys), now)
        # Old rows are no use to anyone; trim them here rather than in a separate job.
        await failures.forget_before(now - self.window)

    async def reset(self, session: AsyncSession, key: str) -> None:
        await LoginFailureRepository(session).forget(key)

    async def count(self, session: AsyncSession, key: str) -> int:
        return await LoginFailureRepository(session).count_since(key, utcnow() - self.window)

    async def aclose(self) -> None:
        return None


class RedisLoginThrottle:
    """A sliding window per key in a sorted set scored by time."""

    def __init__(
        self, redis: Redis, *, max_failures: int, window_seconds: int, prefix: str = "bp:login:"
    ) -> None:
        self.redis = redis
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.prefix = prefix

    async def retry_after(self, session: AsyncSession, keys: Sequence[str]) -> int | None:
        now = utcnow().timestamp()
        worst: int | None = None
        for key in keys:
            name = self.prefix + key
            await self.redis.zremrangebyscore(name, "-inf", now - self.window_seconds)
            recent = await self.redis.zrevrange(name, 0, self.max_failures - 1, withscores=True)
            if len(recent) >= self.max_failures:
                oldest = float(recent[-1][1])
                wait = math.ceil(oldest + self.window_seconds - now)
                worst = max(worst or 0, wait, 1)
        return worst

    async def record_failure(self, session: AsyncSession, keys: Sequence[str]) -> None:
        now = utcnow().timestamp()
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in keys:
                name = self.prefix + key
                pipe.zadd(name, {uuid.uuid4().hex: now})
                pipe.zremrangebyscore(name, "-inf", now - self.window_seconds)
                pipe.expire(name, self.window_seconds)
            await pipe.execute()

    async def reset(self, session: AsyncSession, key: str) -> None:
        await self.redis.delete(self.prefix + key)

    async def aclose(self) -> None:
        await self.redis.aclose()


def create_login_throttle(
    *, redis_url: str | None, max_failures: int, window_seconds: int
) -> LoginThrottle:
    if redis_url:
        redis = Redis.from_url(redis_url, decode_responses=True)
        return RedisLoginThrottle(redis, max_failures=max_failures, window_seconds=window_seconds)
    return DatabaseLoginThrottle(max_failures=max_failures, window_seconds=window_seconds)
