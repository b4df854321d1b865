"""The one place the app builds its payment gateway from its settings (API, CLI, demo seeding).

`gateway_from_settings` builds `GatewaySettings`, the gateway the registry names, and, when
`BILLING_GATEWAY_RATE_LIMIT_PER_SECOND` is set, the rate limit in front of it: a bucket in Redis
shared by every replica when `BILLING_REDIS_URL` is set, one per process otherwise, plus the
back-off on the gateway's own 429s (see `ratelimit`). Without a limit the gateway is returned as
it is, so a 429 surfaces at once as `GatewayUnavailable`.
"""

from __future__ import annotations

import math
from typing import Any

from redis.asyncio import Redis

from app.core.config import Settings
from app.gateways.base import GatewaySettings, PaymentGateway
from app.gateways.buckets import InProcessBucket, RedisBucket, TokenBucket
from app.gateways.ratelimit import RateLimitedGateway
from app.gateways.registry import create_gateway

BUCKET_KEY_PREFIX = "bp:gateway-rate:"


def gateway_settings(settings: Settings) -> GatewaySettings:
    return GatewaySettings(
        stripe_api_key=settings.stripe_api_key,
        stripe_webhook_secret=settings.stripe_webhook_secret,
        stripe_api_base=settings.stripe_api_base,
        timeout_seconds=settings.gateway_timeout_seconds,
        fake_latency_seconds=settings.fake_gateway_latency_seconds,
        fake_ledger_path=settings.fake_gateway_ledger_path,
    )


def gateway_from_settings(settings: Settings, **options: Any) -> PaymentGateway:
    """The gateway `settings.payment_gateway` names, rate-limited when a limit is set;
    `options` go to the gateway's factory."""
    gateway = create_gateway(settings.payment_gateway, gateway_settings(settings), **options)
    bucket = rate_limit_bucket(settings)
    return gateway if bucket is None else RateLimitedGateway(gateway, bucket)


def rate_limit_bucket(settings: Settings) -> TokenBucket | None:
    rate = settings.gateway_rate_limit_per_second
    if rate is None:
        return None
    # Without a burst of its own, the bucket holds one second's worth of calls.
    burst = settings.gateway_rate_limit_burst or max(1, math.ceil(rate))
    if not settings.redis_url:
        return InProcessBucket(rate, burst)
    # One bucket per gateway: the limit is the provider's, whichever replica calls it.
    key = BUCKET_KEY_PREFIX + settings.payment_gateway.strip().lower()
    return RedisBucket(Redis.from_url(settings.redis_url), key, rate, burst)
