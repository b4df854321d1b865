"""`RateLimitedGateway`: the rate limit and the back-off in front of every call to a gateway.

Every call first takes a token from the bucket (`app.gateways.buckets`: per process, or in Redis
for every replica) and waits its turn. A call the gateway refuses for its rate
(`GatewayRateLimited`, HTTP 429) did nothing, so it is made again, with the same arguments and so
the same idempotency key: after the gateway's `Retry-After` when it gives one, else after an
exponential back-off with full jitter. The whole call, queueing and back-off included, waits at
most `max_wait_seconds`; after that the 429 (or the lack of a token) surfaces as
`GatewayRateLimited`, a `GatewayUnavailable`, and the caller's unknown-outcome handling takes
over. Other errors pass through untouched: whether to retry those is the caller's business.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from app.gateways.base import (
    AttachedMethod,
    Charge,
    GatewayRateLimited,
    PaymentGateway,
    Refund,
    WebhookEvent,
)
from app.gateways.buckets import TokenBucket

DEFAULT_MAX_WAIT_SECONDS = 30.0
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 8.0

_T = TypeVar("_T")
_log = logging.getLogger(__name__)


class RateLimitedGateway:
    """A `PaymentGateway` that limits and backs off the calls to the one it wraps."""

    def __init__(
        self,
        inner: PaymentGateway,
        bucket: TokenBucket | None,
        *,
        max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.name = inner.name
        self.inner = inner
        self.bucket = bucket
        self._max_wait = max_wait_seconds
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter

    async def create_customer(
        self, *, name: str, email: str | None, metadata: Mapping[str, str]
    ) -> str:
        return await self._call(
            "customer",
            lambda: self.inner.create_customer(name=name, email=email, metadata=metadata),
        )

    async def attach_method(self, *, token: str, customer_reference: str) -> AttachedMethod:
        return await self._call(
            "attach",
            lambda: self.inner.attach_method(token=token, customer_reference=customer_reference),
        )

    async def charge(
        self,
        *,
        amount: int,
        currency: str,
        method_reference: str,
        customer_reference: str,
        idempotency_key: str,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Charge:
        return await self._call(
            "charge",
            lambda: self.inner.charge(
                amount=amount,
                currency=currency,
                method_reference=method_reference,
                customer_reference=customer_reference,
                idempotency_key=idempotency_key,
                description=description,
                metadata=metadata,
            ),
        )

    async def get_charge(self, reference: str) -> Charge:
        return await self._call("get_charge", lambda: self.inner.get_charge(reference))

    async def refund(self, *, charge_reference: str, amount: int, idempotency_key: str) -> Refund:
        return await self._call(
            "refund",
            lambda: self.inner.refund(
                charge_reference=charge_reference, amount=amount, idempotency_key=idempotency_key
            ),
        )

    def verify_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        # Local work: no call to the gateway, nothing to limit.
        return self.inner.verify_webhook(payload=payload, headers=headers)

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            if self.bucket is not None:
                await self.bucket.aclose()

    async def _call(self, operation: str, call: Callable[[], Awaitable[_T]]) -> _T:
        deadline = self._clock() + self._max_wait
        attempt = 0
        while True:
            await self._take_token(operation, deadline)
            try:
                return await call()
            except GatewayRateLimited as exc:
                attempt += 1
                delay = self._backoff(attempt, exc.retry_after)
                if self._clock() + delay > deadline:
                    raise
                _log.warning(
                    "gateway rate-limited %s; retrying in %.2f s (attempt %d)",
                    operation,
                    delay,
                    attempt + 1,
                    extra={"gateway": self.name, "operation": operation},
                )
                await self._sleep(delay)

    async def _take_token(self, operation: str, deadline: float) -> None:
        if self.bucket is None:
            return
        wait = await self.bucket.reserve(max(0.0, deadline - self._clock()))
        if wait is None:
            raise GatewayRateLimited(
                f"gateway rate limit: no slot for {operation} within {self._max_wait:g} s"
            )
        if wait > 0:
            await self._sleep(wait)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** (attempt - 1))
        return self._jitter() * ceiling
