"""Token buckets for the gateway rate limit: one per process, or one in Redis for every replica.

A bucket holds at most `burst` tokens and gains `rate` per second. `reserve(max_wait)` takes the
next token and answers how long the caller must wait before using it (0 when one is there now);
the balance may go negative, so callers queue in order without polling and the calls let through
never exceed `rate * elapsed + burst` in any span starting from a full bucket. When the wait
would exceed `max_wait`, nothing is taken and the answer is None.

The Redis bucket runs that same arithmetic as ONE Lua script (atomic: no read-then-write race
between replicas), on Redis's own clock (`TIME`) so replicas' clocks need not agree; tests may
pass a clock of their own instead.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

_log = logging.getLogger(__name__)


class TokenBucket(Protocol):
    async def reserve(self, max_wait: float) -> float | None: ...

    async def aclose(self) -> None: ...


def _check(rate: float, burst: int) -> None:
    if not (rate > 0 and math.isfinite(rate)) or burst < 1:
        raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got {rate!r}/{burst!r}")


class InProcessBucket:
    """The bucket for one process (no Redis configured): every task of the process shares it."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        _check(rate, burst)
        self.rate, self.burst = rate, burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp: float | None = None

    async def reserve(self, max_wait: float) -> float | None:
        now = self._clock()
        tokens = self._tokens
        if self._stamp is None:
            self._stamp = now
        elif now > self._stamp:
            tokens = min(float(self.burst), tokens + (now - self._stamp) * self.rate)
            self._stamp = now
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        if wait > max_wait:
            self._tokens = tokens
            return None
        self._tokens = tokens - 1
        return wait

    async def aclose(self) -> None:
        return None


# KEYS[1]: the bucket. ARGV: rate, burst, max_wait, now ("" = Redis's clock). Returns
# {granted (1/0), wait}, as strings: Lua numbers would come back truncated to integers.
_RESERVE = """
local rate, burst, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now
if ARGV[4] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[4])
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens, stamp = tonumber(state[1]), tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens, stamp = burst, now
elseif now > stamp then
  tokens = math.min(burst, tokens + (now - stamp) * rate)
  stamp = now
end
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
if wait > max_wait then
  return {'0', string.format('%.6f', wait)}
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'stamp', string.format('%.17g', stamp))
-- Once full again the bucket is the same as no bucket: let it go then.
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {'1', string.format('%.6f', wait)}
"""


class RedisBucket:
    """One bucket in Redis shared by every process that names the same key.

    If Redis cannot be reached the call goes through unlimited (logged): a gateway's own 429s
    are still backed off by `RateLimitedGateway`, whereas refusing every payment while Redis is
    down would stop the money for a limiter's sake."""

    def __init__(
        self,
        redis: Redis,
        key: str,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        _check(rate, burst)
        self.rate, self.burst, self.key = rate, burst, key
        self._redis = redis
        self._script = redis.register_script(_RESERVE)
        self._clock = clock

    async def reserve(self, max_wait: float) -> float | None:
        now = "" if self._clock is None else repr(self._clock())
        try:
            granted, wait = await self._script(
                keys=[self.key], args=[repr(self.rate), self.burst, repr(max_wait), now]
            )
        except RedisError as exc:
            _log.warning(
                "gateway rate limit not applied: Redis failed (%s)",
                type(exc).__name__,
                extra={"bucket": self.key},
            )
            return 0.0
        return float(wait) if int(granted) else None

    async def aclose(self) -> None:
        await self._redis.aclose()
