"""Where throttle counts live: the database by default, Redis when `BILLING_REDIS_URL` is
set (replicas share either). Every change is one atomic step in the store itself (an upsert
with RETURNING, a Lua script), never a read followed by a write, so fifty attempts at once
get fifty different counts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.throttle.repository import ThrottleCounterRepository
from app.core.clock import utcnow
from app.core.db import transaction


class CounterStore(Protocol):
    """Keys are taken in the order given; callers give them by kind, (account, address)
    before account before address, the same order for everyone, so no two deadlock.
    `session`: count inside the caller's transaction (a request that already holds one,
    where a second transaction would wait on the first on SQLite); None: a transaction of
    the store's own, committed at once. Redis ignores it."""

    async def hit(
        self, keys: Sequence[tuple[str, int]], session: AsyncSession | None = None
    ) -> list[tuple[int, int]]:
        """Count one attempt on each (key, window seconds): for each, the count now and
        the seconds left in its window."""
        ...

    async def admit(
        self, checks: Sequence[Check], exempt_if: str, session: AsyncSession | None = None
    ) -> Admission:
        """Count one attempt on each check's key in order, stopping at the first over its
        limit and handing back the counts taken before it, all in one atomic step (so a
        refused attempt never blocks others, even for an instant). The last check is
        exempt (not counted) when `exempt_if` has a count."""
        ...

    async def refund(self, keys: Sequence[str], session: AsyncSession | None = None) -> None: ...

    async def settle(
        self,
        clear: Sequence[str],
        refund: Sequence[str],
        mark: tuple[str, int],
        session: AsyncSession | None = None,
    ) -> None:
        """After a success, in one step: forget `clear`, hand back one count on each of
        `refund`, and count one on `mark` (key, window)."""
        ...

    async def current(self, key: str, session: AsyncSession | None = None) -> int: ...

    async def clear(self, keys: Sequence[str], session: AsyncSession | None = None) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Check:
    key: str
    window: int
    limit: int


@dataclass(frozen=True, slots=True)
class Admission:
    retry_after: int | None  # None: admitted
    last_counted: bool  # the last check's count was taken (not exempt, not refused)


def _seconds_left(end: datetime, now: datetime) -> int:
    return max(1, int((end - now).total_seconds() + 0.999))


class DatabaseCounterStore:
    """Each call is a short transaction of its own, committed at once: the request's own
    transaction is never held open around a counter (nor a password hash)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    @asynccontextmanager
    async def _unit(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        if session is not None:
            yield session
            return
        async with transaction(self.sessionmaker) as own:
            yield own

    async def hit(
        self, keys: Sequence[tuple[str, int]], session: AsyncSession | None = None
    ) -> list[tuple[int, int]]:
        now = utcnow()
        results = []
        async with self._unit(session) as session:
            counters = ThrottleCounterRepository(session)
            # Ended windows are no use to anyone; trim them here rather than in a job.
            await counters.forget_ended(now)
            for key, window in keys:
                count, end = await counters.hit(
                    key, now=now, expires_at=now + timedelta(seconds=window)
                )
                results.append((key, (count, _seconds_left(end, now))))
        by_key = dict(results)
        return [by_key[key] for key, _ in keys]

    async def admit(
        self, checks: Sequence[Check], exempt_if: str, session: AsyncSession | None = None
    ) -> Admission:
        now = utcnow()
        async with self._unit(session) as session:
            counters = ThrottleCounterRepository(session)
            await counters.forget_ended(now)
            # Every caller takes the rows in the same order (by kind), so no two deadlock.
            for index, check in enumerate(checks):
                end_of_new = now + timedelta(seconds=check.window)
                count, end = await counters.hit(check.key, now=now, expires_at=end_of_new)
                if count <= check.limit:
                    continue
                last = index == len(checks) - 1
                if last and await counters.current(exempt_if, now=now) > 0:
                    await counters.refund(check.key, now=now)
                    return Admission(None, last_counted=False)
                for earlier in checks[:index]:
                    await counters.refund(earlier.key, now=now)
                return Admission(_seconds_left(end, now), last_counted=False)
        return Admission(None, last_counted=True)

    async def settle(
        self,
        clear: Sequence[str],
        refund: Sequence[str],
        mark: tuple[str, int],
        session: AsyncSession | None = None,
    ) -> None:
        now = utcnow()
        async with self._unit(session) as session:
            counters = ThrottleCounterRepository(session)
            for key in clear:
                await counters.clear(key)
            for key in refund:
                await counters.refund(key, now=now)
            await counters.hit(mark[0], now=now, expires_at=now + timedelta(seconds=mark[1]))

    async def refund(self, keys: Sequence[str], session: AsyncSession | None = None) -> None:
        if not keys:
            return
        async with self._unit(session) as session:
            for key in keys:
                await ThrottleCounterRepository(session).refund(key, now=utcnow())

    async def current(self, key: str, session: AsyncSession | None = None) -> int:
        async with self._unit(session) as session:
            return await ThrottleCounterRepository(session).current(key, now=utcnow())

    async def clear(self, keys: Sequence[str], session: AsyncSession | None = None) -> None:
        async with self._unit(session) as session:
            for key in keys:
                await ThrottleCounterRepository(session).clear(key)

    async def aclose(self) -> None:
        return None


# KEYS[1]: the counter (a hash: n = count, e = window end); ARGV: now, window (seconds).
# The application's clock decides when a window ends, so tests can move time.
_HIT = """
local now = tonumber(ARGV[1])
local e = tonumber(redis.call('HGET', KEYS[1], 'e') or '0')
local n
if e <= now then
  e = now + tonumber(ARGV[2])
  n = 1
  redis.call('HSET', KEYS[1], 'n', 1, 'e', e)
else
  n = redis.call('HINCRBY', KEYS[1], 'n', 1)
end
redis.call('EXPIRE', KEYS[1], math.ceil(e - now) + 1)
return {n, tostring(e)}
"""
# KEYS: the checks' keys in order, then the exemption key; ARGV: now, then window and limit
# per check. One script, so the whole admission is one atomic step.
_ADMIT = """
local now = tonumber(ARGV[1])
local checks = #KEYS - 1
for i = 1, checks do
  local window, limit = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local e = tonumber(redis.call('HGET', KEYS[i], 'e') or '0')
  local n
  if e <= now then
    e = now + window
    n = 1
    redis.call('HSET', KEYS[i], 'n', 1, 'e', e)
  else
    n = redis.call('HINCRBY', KEYS[i], 'n', 1)
  end
  redis.call('EXPIRE', KEYS[i], math.ceil(e - now) + 1)
  if n > limit then
    local x = tonumber(redis.call('HGET', KEYS[#KEYS], 'e') or '0')
    if i == checks and x > now and tonumber(redis.call('HGET', KEYS[#KEYS], 'n')) > 0 then
      redis.call('HINCRBY', KEYS[i], 'n', -1)
      return {0, 0}
    end
    for j = 1, i - 1 do
      redis.call('HINCRBY', KEYS[j], 'n', -1)
    end
    return {1, tostring(e)}
  end
end
return {0, 1}
"""
_REFUND = """
local e = tonumber(redis.call('HGET', KEYS[1], 'e') or '0')
if e > tonumber(ARGV[1]) and tonumber(redis.call('HGET', KEYS[1], 'n')) > 0 then
  redis.call('HINCRBY', KEYS[1], 'n', -1)
end
return 0
"""


class RedisCounterStore:
    def __init__(self, redis: Redis, *, prefix: str = "bp:throttle:") -> None:
        self.redis = redis
        self.prefix = prefix
        self._hit = redis.register_script(_HIT)
        self._refund = redis.register_script(_REFUND)
        self._admit = redis.register_script(_ADMIT)

    async def admit(
        self, checks: Sequence[Check], exempt_if: str, session: AsyncSession | None = None
    ) -> Admission:
        now = utcnow().timestamp()
        args: list[float] = [now]
        for check in checks:
            args += [check.window, check.limit]
        keys = [self.prefix + check.key for check in checks] + [self.prefix + exempt_if]
        refused, detail = await self._admit(keys=keys, args=args)
        if int(refused):
            return Admission(max(1, int(float(detail) - now + 0.999)), last_counted=False)
        return Admission(None, last_counted=bool(int(detail)))

    async def hit(
        self, keys: Sequence[tuple[str, int]], session: AsyncSession | None = None
    ) -> list[tuple[int, int]]:
        now = utcnow().timestamp()
        results = []
        for key, window in keys:
            count, end = await self._hit(keys=[self.prefix + key], args=[now, window])
            results.append((int(count), max(1, int(float(end) - now + 0.999))))
        return results

    async def refund(self, keys: Sequence[str], session: AsyncSession | None = None) -> None:
        now = utcnow().timestamp()
        for key in keys:
            await self._refund(keys=[self.prefix + key], args=[now])

    async def settle(
        self,
        clear: Sequence[str],
        refund: Sequence[str],
        mark: tuple[str, int],
        session: AsyncSession | None = None,
    ) -> None:
        await self.clear(clear)
        await self.refund(refund)
        await self.hit([mark])

    async def current(self, key: str, session: AsyncSession | None = None) -> int:
        values = await self.redis.hmget(self.prefix + key, ["n", "e"])
        count, end = values[0], values[1]
        if count is None or end is None or float(end) <= utcnow().timestamp():
            return 0
        return int(count)

    async def clear(self, keys: Sequence[str], session: AsyncSession | None = None) -> None:
        if keys:
            await self.redis.delete(*(self.prefix + key for key in keys))

    async def aclose(self) -> None:
        await self.redis.aclose()
