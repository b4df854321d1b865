"""`gateway_from_settings`: the one place the API, the CLI and the demo seeder build a gateway."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.config import Settings
from app.gateways.buckets import InProcessBucket, RedisBucket
from app.gateways.factory import BUCKET_KEY_PREFIX, gateway_from_settings, gateway_settings
from app.gateways.fake import FakeGateway
from app.gateways.ratelimit import RateLimitedGateway
from app.main import create_app
from tests.conftest import make_settings

REDIS_URL = os.environ.get("BILLING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return make_settings("sqlite+aiosqlite:///:memory:", tmp_path, **overrides)


async def test_without_a_limit_the_gateway_is_bare(tmp_path: Path) -> None:
    gateway = gateway_from_settings(_settings(tmp_path, fake_gateway_latency_seconds=0.5))
    assert isinstance(gateway, FakeGateway)
    assert gateway.latency_seconds == 0.5


@pytest.mark.parametrize(("rate", "burst", "expected_burst"), [(2.5, None, 3), (25.0, 5, 5)])
async def test_a_limit_without_redis_is_per_process(
    tmp_path: Path, rate: float, burst: int | None, expected_burst: int
) -> None:
    settings = _settings(
        tmp_path, gateway_rate_limit_per_second=rate, gateway_rate_limit_burst=burst
    )
    gateway = gateway_from_settings(settings)
    assert isinstance(gateway, RateLimitedGateway)
    assert isinstance(gateway.inner, FakeGateway)
    assert isinstance(gateway.bucket, InProcessBucket)
    assert (gateway.bucket.rate, gateway.bucket.burst) == (rate, expected_burst)
    await gateway.aclose()


async def test_a_limit_with_redis_is_shared(tmp_path: Path) -> None:
    settings = _settings(tmp_path, gateway_rate_limit_per_second=25, redis_url=REDIS_URL)
    gateway = gateway_from_settings(settings)
    assert isinstance(gateway, RateLimitedGateway)
    assert isinstance(gateway.bucket, RedisBucket)
    assert gateway.bucket.key == BUCKET_KEY_PREFIX + "fake"
    await gateway.aclose()


@pytest.mark.parametrize("field", ["gateway_rate_limit_per_second", "gateway_rate_limit_burst"])
def test_a_limit_must_be_positive(tmp_path: Path, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        _settings(tmp_path, **{field: 0})


async def test_the_app_uses_it(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, gateway_rate_limit_per_second=10))
    assert isinstance(app.state.gateway, RateLimitedGateway)
    await app.state.gateway.aclose()
    await app.state.engine.dispose()


def test_gateway_settings_carry_the_app_settings(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        stripe_api_key="sk_test_x",
        stripe_api_base="http://127.0.0.1:9",
        gateway_timeout_seconds=3,
        fake_gateway_ledger=str(tmp_path / "l.db"),
    )
    built = gateway_settings(settings)
    assert (built.stripe_api_key, built.stripe_api_base, built.timeout_seconds) == (
        "sk_test_x",
        "http://127.0.0.1:9",
        3,
    )
    assert built.fake_ledger_path == str(tmp_path / "l.db")
