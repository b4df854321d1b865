"""The gateway rate limit and the 429 back-off (`app.gateways.buckets`, `app.gateways.ratelimit`).

Bucket arithmetic and back-off run on a clock the test controls. The "never above the rate"
tests run for real (asyncio tasks in one process; OS processes sharing one Redis bucket) and
judge the call times the fake gateway recorded against the moment the test began: whatever the
machine's load, a correct limiter lets at most `rate * (t - start) + burst` calls through by any
time t, and delays can only make that easier to meet, never harder.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from gateway_support import charge_once, stripe_settings
from redis.asyncio import Redis
from stripe_sim import StripeSimulator

from app.gateways import (
    GatewayDeclined,
    GatewayRateLimited,
    GatewaySettings,
    GatewayUnavailable,
    PaymentGateway,
)
from app.gateways.buckets import InProcessBucket, RedisBucket, TokenBucket
from app.gateways.factory import BUCKET_KEY_PREFIX
from app.gateways.fake import FakeGateway, ledger_call_times, sign_fake_webhook
from app.gateways.ratelimit import RateLimitedGateway
from app.gateways.stripe import StripeGateway

REDIS_URL = os.environ.get("BILLING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REPO_ROOT = Path(__file__).resolve().parents[2]
CLOCK_SLACK = 0.005  # the bucket's clock (monotonic, or Redis's) against time.time() at the fake

BucketMaker = Callable[..., TokenBucket]


class Clock:
    """A clock the test moves; its `sleep` advances it and records how long was slept."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
async def redis_key() -> AsyncIterator[str]:
    key = f"bp:test:gateway-rate:{uuid.uuid4().hex}"
    yield key
    async with Redis.from_url(REDIS_URL) as redis:
        await redis.delete(key)


@pytest.fixture(params=["in process", "redis"])
def make_bucket(request: pytest.FixtureRequest, redis_key: str) -> BucketMaker:
    def make(rate: float, burst: int, clock: Callable[[], float] | None = None) -> TokenBucket:
        if request.param == "in process":
            return InProcessBucket(rate, burst, clock=clock or time.monotonic)
        return RedisBucket(Redis.from_url(REDIS_URL), redis_key, rate, burst, clock=clock)

    return make


async def _method(gateway: PaymentGateway, token: str = "tok_visa") -> str:  # noqa: S107
    return (await gateway.attach_method(token=token, customer_reference="cus_fake_1")).reference


def assert_under_rate(times: list[float], start: float, rate: float, burst: int) -> None:
    per_second = Counter(int(t - start) for t in times)
    for k, at in enumerate(sorted(times), start=1):
        allowed = rate * (at - start + CLOCK_SLACK) + burst
        assert k <= allowed, (
            f"call {k} at +{at - start:.3f} s exceeds {allowed:.1f} allowed; "
            f"calls per second since the start: {sorted(per_second.items())}"
        )


# -- the bucket's arithmetic, on a controlled clock (the same for both kinds) ------------------


async def test_a_bucket_grants_its_burst_then_queues_at_the_rate(make_bucket: BucketMaker) -> None:
    clock = Clock()
    bucket = make_bucket(2.0, 3, clock)
    try:
        assert [await bucket.reserve(10) for _ in range(5)] == [0, 0, 0, 0.5, 1.0]
        assert await bucket.reserve(1.2) is None  # the next slot is 1.5 s away
        assert await bucket.reserve(1.5) == 1.5  # the refusal took nothing
        clock.now += 100  # idle for long: full again, but never above the burst
        assert [await bucket.reserve(0) for _ in range(3)] == [0, 0, 0]
        assert await bucket.reserve(0) is None
        clock.now += 0.25  # half a token
        assert await bucket.reserve(1) == 0.25
    finally:
        await bucket.aclose()


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0), (float("inf"), 1)])
def test_a_bucket_needs_a_positive_rate_and_burst(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        InProcessBucket(rate, burst)


async def test_a_redis_bucket_that_cannot_reach_redis_lets_calls_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket = RedisBucket(Redis.from_url("redis://127.0.0.1:1/0"), "k", 1.0, 1)
    assert [await bucket.reserve(0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert "gateway rate limit not applied" in caplog.text
    await bucket.aclose()


# -- back-off on the gateway's 429s, on a controlled clock ------------------------------------


def _limited(inner: PaymentGateway, clock: Clock, **options: object) -> RateLimitedGateway:
    return RateLimitedGateway(
        inner, options.pop("bucket", None), clock=clock, sleep=clock.sleep, **options
    )


async def test_a_429_is_retried_with_the_same_key_and_charged_once() -> None:
    fake, clock = FakeGateway(), Clock()
    limited = _limited(fake, clock, jitter=lambda: 1.0)
    method = await _method(limited)
    fake.fail_next(2, mode="rate_limited")
    await charge_once(limited, method, "inv-1-attempt-1")
    assert fake.summary() == {
        "charges": 1,
        "declines": 0,
        "refunds": 0,
        "calls": 3,
        "distinct_keys": 1,
    }
    assert clock.slept == [0.25, 0.5]  # exponential: base, then twice as long


async def test_retry_after_is_honoured() -> None:
    fake, clock = FakeGateway(), Clock()
    limited = _limited(fake, clock)
    method = await _method(limited)
    fake.fail_next(mode="rate_limited", retry_after=2.5)
    await charge_once(limited, method, "k")
    assert clock.slept == [2.5]


async def test_the_back_off_is_jittered_and_capped() -> None:
    fake, clock = FakeGateway(), Clock()
    limited = _limited(fake, clock, jitter=lambda: 0.5, max_wait_seconds=60)
    method = await _method(limited)
    fake.fail_next(7, mode="rate_limited")
    await charge_once(limited, method, "k")
    assert clock.slept == [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 4.0]  # half of min(8, 0.25 * 2^n)


async def test_the_total_wait_is_bounded_then_the_429_surfaces_as_unavailable() -> None:
    fake, clock = FakeGateway(), Clock()
    limited = _limited(fake, clock, jitter=lambda: 1.0, max_wait_seconds=5)
    method = await _method(limited)
    fake.fail_next(100, mode="rate_limited")
    with pytest.raises(GatewayRateLimited) as caught:
        await charge_once(limited, method, "k")
    assert isinstance(caught.value, GatewayUnavailable)
    assert clock.slept == [0.25, 0.5, 1.0, 2.0]  # the next (4 s) would end past 5 s
    assert (fake.summary()["calls"], fake.summary()["charges"]) == (5, 0)


async def test_other_failures_are_not_retried() -> None:
    fake, clock = FakeGateway(), Clock()
    limited = _limited(fake, clock)
    method = await _method(limited)
    fake.fail_next(mode="timeout")
    with pytest.raises(GatewayUnavailable) as caught:
        await charge_once(limited, method, "k-1")
    assert caught.value.code == "timeout"
    with pytest.raises(GatewayDeclined):
        await charge_once(limited, await _method(limited, "tok_chargeDeclined"), "k-2")
    assert clock.slept == []
    assert fake.summary()["calls"] == 2


async def test_stripe_429s_are_retried_with_the_same_idempotency_key() -> None:
    with StripeSimulator() as sim:
        stripe = StripeGateway(stripe_settings(stripe_api_base=sim.api_base))
        clock = Clock()
        limited = _limited(stripe, clock, jitter=lambda: 1.0)
        customer = await limited.create_customer(name="Acme", email=None, metadata={})
        method = await limited.attach_method(token="tok_visa", customer_reference=customer)
        sim.fail_next(429)
        sim.respond_next(429, {"error": {"type": "rate_limit_error"}}, **{"Retry-After": "1.5"})
        await limited.charge(
            amount=100,
            currency="USD",
            method_reference=method.reference,
            customer_reference=customer,
            idempotency_key="inv-9-attempt-1",
        )
        posts = [r for r in sim.requests if r.url.path == "/v1/payment_intents"]
        assert [r.headers["Idempotency-Key"] for r in posts] == ["inv-9-attempt-1"] * 3
        assert len(sim.money_moving_intents) == 1
        assert clock.slept == [0.25, 1.5]
        await limited.aclose()


# -- the limit itself ----------------------------------------------------------------------------


async def test_calls_wait_for_their_slot() -> None:
    fake, clock = FakeGateway(), Clock()
    limited = _limited(fake, clock, bucket=InProcessBucket(2.0, 1, clock=clock))
    method = (await fake.attach_method(token="tok_visa", customer_reference="c")).reference
    for n in range(3):
        await charge_once(limited, method, f"k-{n}")
    assert clock.slept == [0.5, 0.5]


async def test_no_slot_in_time_fails_without_calling_the_gateway() -> None:
    fake, clock = FakeGateway(), Clock()
    bucket = InProcessBucket(1.0, 1, clock=clock)
    for _ in range(3):
        await bucket.reserve(10)  # the next slot is 3 s away
    limited = _limited(fake, clock, bucket=bucket, max_wait_seconds=2)
    with pytest.raises(GatewayRateLimited, match="no slot"):
        await charge_once(limited, "pm_fake_tok_visa_000000000000", "k")
    assert fake.summary()["calls"] == 0


async def test_the_wrapper_is_a_gateway() -> None:
    fake = FakeGateway(GatewaySettings(fake_webhook_secret="whsec_x"))
    limited = RateLimitedGateway(fake, InProcessBucket(1.0, 1))
    assert isinstance(limited, PaymentGateway)
    assert limited.name == "fake"
    payload = b'{"id": "evt_1", "type": "x", "data": {}}'
    headers = {"Fake-Signature": sign_fake_webhook(payload, "whsec_x")}
    assert limited.verify_webhook(payload=payload, headers=headers).id == "evt_1"
    await limited.aclose()


def test_the_rate_check_catches_an_unlimited_burst() -> None:
    with pytest.raises(AssertionError, match="exceeds"):
        assert_under_rate([100.0] * 10, 100.0, 40.0, 4)


async def test_tasks_sharing_a_bucket_stay_under_the_rate(make_bucket: BucketMaker) -> None:
    rate, burst = 40.0, 4
    fake = FakeGateway()
    limited = RateLimitedGateway(fake, make_bucket(rate, burst))  # the real clocks
    method = (await fake.attach_method(token="tok_visa", customer_reference="c")).reference
    start = time.time()

    async def task(number: int) -> None:
        for n in range(6):
            await charge_once(limited, method, f"task-{number}-{n}")

    await asyncio.gather(*(task(number) for number in range(8)))
    times = fake.call_times
    assert len(times) == 48
    assert_under_rate(times, start, rate, burst)
    await limited.aclose()


CHILD = """
import asyncio, sys, time
from app.core.config import Settings
from app.gateways.factory import gateway_from_settings
from app.gateways.ratelimit import RateLimitedGateway

async def main(method, start, calls, name):
    gateway = gateway_from_settings(Settings())
    assert isinstance(gateway, RateLimitedGateway), gateway
    await asyncio.sleep(max(0.0, start - time.time()))
    await asyncio.gather(*(
        gateway.charge(amount=100, currency="USD", method_reference=method,
                       customer_reference="cus_fake_1", idempotency_key=f"{name}-{n}")
        for n in range(calls)
    ))
    await gateway.aclose()

asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
"""


async def test_processes_sharing_one_redis_bucket_stay_under_the_rate(tmp_path: Path) -> None:
    rate, burst, processes, calls = 20.0, 3, 3, 12
    ledger = str(tmp_path / "ledger.sqlite3")
    key = BUCKET_KEY_PREFIX + "fake"  # what gateway_from_settings names the fake's bucket
    async with Redis.from_url(REDIS_URL) as redis:
        await redis.delete(key)
    method = (await FakeGateway().attach_method(token="tok_visa", customer_reference="c")).reference
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "BILLING_ENV": "test",
        "BILLING_DATA_DIR": str(tmp_path),
        "BILLING_PAYMENT_GATEWAY": "fake",
        "BILLING_FAKE_GATEWAY_LEDGER": ledger,
        "BILLING_REDIS_URL": REDIS_URL,
        "BILLING_GATEWAY_RATE_LIMIT_PER_SECOND": str(rate),
        "BILLING_GATEWAY_RATE_LIMIT_BURST": str(burst),
    }
    start = time.time() + 2.0  # every process is up before any calls: maximal contention
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            method,
            repr(start),
            str(calls),
            f"process-{n}",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for n in range(processes)
    ]
    try:
        outputs = [await child.communicate() for child in children]
        assert [child.returncode for child in children] == [0] * processes, outputs
    finally:
        async with Redis.from_url(REDIS_URL) as redis:
            await redis.delete(key)
    times = ledger_call_times(ledger)
    assert len(times) == processes * calls
    assert_under_rate(times, start, rate, burst)
