"""Sign-in throttling, per account and per address, with the count in the database or Redis.

Every test runs on both backends: the suite's app (database) and a second app built on the
same database with `redis_url` set. The Redis one uses a key prefix of its own and deletes
only its own keys.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient, Response

from app.auth.throttle import DatabaseLoginThrottle, RedisLoginThrottle
from app.core.clock import FrozenClock
from app.core.config import Settings
from app.main import create_app
from app.models import LoginFailure, RefreshToken
from tests.conftest import make_settings
from tests.factories import PASSWORD, Factory, assert_problem, count_rows

REDIS_URL = os.environ.get("BILLING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ADDRESS = "203.0.113.7"
WRONG = "definitely not the password"


@dataclass
class Portal:
    """One app under test, with an HTTP client per source address."""

    app: Any
    backend: str
    settings: Settings
    _clients: dict[str, AsyncClient] = field(default_factory=dict)

    def http(self, address: str = ADDRESS) -> AsyncClient:
        if address not in self._clients:
            transport = ASGITransport(app=self.app, client=(address, 40000))
            self._clients[address] = AsyncClient(transport=transport, base_url="http://testserver")
        return self._clients[address]

    async def sign_in(self, email: str, password: str, *, address: str = ADDRESS) -> Response:
        return await self.http(address).post(
            "/api/v1/auth/token", data={"username": email, "password": password}
        )

    async def aclose(self) -> None:
        for http in self._clients.values():
            await http.aclose()


@pytest.fixture(params=["database", "redis"])
async def portal(
    request: pytest.FixtureRequest, app: Any, database_url: str, data_dir: Path
) -> AsyncIterator[Portal]:
    if request.param == "database":
        assert isinstance(app.state.login_throttle, DatabaseLoginThrottle)
        portal = Portal(app, "database", app.state.settings)
        yield portal
        await portal.aclose()
        return
    settings = make_settings(database_url, data_dir, redis_url=REDIS_URL)
    redis_app = create_app(settings)
    throttle = redis_app.state.login_throttle
    assert isinstance(throttle, RedisLoginThrottle)
    throttle.prefix = f"bp-test:{uuid.uuid4().hex}:"
    portal = Portal(redis_app, "redis", settings)
    try:
        yield portal
    finally:
        await portal.aclose()
        keys = [key async for key in throttle.redis.scan_iter(match=throttle.prefix + "*")]
        if keys:
            await throttle.redis.delete(*keys)
        await throttle.aclose()
        await redis_app.state.engine.dispose()


def address(n: int) -> str:
    return f"198.51.100.{n}"


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


def assert_throttled(response: Response, window: int) -> int:
    assert_problem(response, 429, "sign-in-throttled")
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window
    assert "access_token" not in response.text
    return retry_after


async def test_five_failures_lock_the_account(portal: Portal, factory: Factory) -> None:
    world = await factory.world()
    email = world.staff.user.email
    window = portal.settings.login_window_seconds
    with FrozenClock(datetime.now(UTC)):
        # From a new address each time, so only the account's count can be what stops it;
        # the case of the email does not make it another account.
        for n in range(5):
            typed = email.upper() if n % 2 else email
            response = await portal.sign_in(typed, WRONG, address=address(n))
            assert_problem(response, 401, "invalid-credentials")
        locked = await portal.sign_in(email, PASSWORD, address=address(9))
        assert assert_throttled(locked, window) == window
    assert await count_rows(factory, RefreshToken) == 0
    # Other accounts are not affected.
    other = await portal.sign_in(world.contact.user.email, PASSWORD, address=address(10))
    assert other.status_code == 200, other.text


async def test_an_unknown_email_is_throttled_exactly_the_same(
    portal: Portal, factory: Factory
) -> None:
    world = await factory.world()
    known = world.staff.user.email
    unknown = f"nobody-{uuid.uuid4().hex[:6]}@example.com"
    answers: dict[str, list[Response]] = {known: [], unknown: []}
    with FrozenClock(datetime.now(UTC)):
        for email, base in ((known, 0), (unknown, 20)):
            for n in range(6):
                answers[email].append(await portal.sign_in(email, WRONG, address=address(base + n)))
    for email in (known, unknown):
        assert [r.status_code for r in answers[email]] == [401] * 5 + [429], email
    for a, b in zip(answers[known], answers[unknown], strict=True):
        assert a.headers["content-type"] == b.headers["content-type"]
        assert a.headers.get("retry-after") == b.headers.get("retry-after")
        assert without_request_id(a.json()) == without_request_id(b.json())


async def test_failures_from_one_address_lock_the_address(portal: Portal, factory: Factory) -> None:
    world = await factory.world()
    with FrozenClock(datetime.now(UTC)):
        for n in range(5):
            response = await portal.sign_in(f"guess-{n}@example.com", WRONG)
            assert_problem(response, 401, "invalid-credentials")
        # A real account with its right password, from the same address: still no.
        blocked = await portal.sign_in(world.staff.user.email, PASSWORD)
        assert_throttled(blocked, portal.settings.login_window_seconds)
        # The same account from elsewhere is fine.
        elsewhere = await portal.sign_in(world.staff.user.email, PASSWORD, address=address(50))
        assert elsewhere.status_code == 200, elsewhere.text


async def test_the_lock_lifts_when_the_window_has_passed(portal: Portal, factory: Factory) -> None:
    world = await factory.world()
    email = world.contact.user.email
    window = portal.settings.login_window_seconds
    with FrozenClock(datetime.now(UTC)) as clock:
        for n in range(5):
            await portal.sign_in(email, WRONG, address=address(n))
            clock.advance(seconds=10)  # failures spread over 40 seconds
        first = await portal.sign_in(email, PASSWORD, address=address(60))
        retry_after = assert_throttled(first, window)
        # Free once the oldest of the five leaves the window: it happened 50 seconds ago.
        assert retry_after == window - 50
        clock.advance(seconds=retry_after - 1)
        # Throttled attempts are not failures: they do not push the lock further out.
        last = await portal.sign_in(email, WRONG, address=address(61))
        assert assert_throttled(last, window) == 1
        clock.advance(seconds=1)
        allowed = await portal.sign_in(email, PASSWORD, address=address(62))
        assert allowed.status_code == 200, allowed.text


async def test_a_success_resets_the_account_count(portal: Portal, factory: Factory) -> None:
    world = await factory.world()
    email = world.staff.user.email
    with FrozenClock(datetime.now(UTC)):
        for n in range(4):
            assert (await portal.sign_in(email, WRONG, address=address(n))).status_code == 401
        ok = await portal.sign_in(email, PASSWORD, address=address(10))
        assert ok.status_code == 200, ok.text
        for n in range(4):
            response = await portal.sign_in(email, WRONG, address=address(20 + n))
            assert response.status_code == 401
        again = await portal.sign_in(email, PASSWORD, address=address(30))
        assert again.status_code == 200, again.text


async def test_the_count_lives_in_the_configured_backend(portal: Portal, factory: Factory) -> None:
    await portal.sign_in("someone@example.com", WRONG)
    stored = await count_rows(factory, LoginFailure)
    if portal.backend == "database":
        assert stored == 2  # the account and the address
        return
    assert stored == 0
    throttle = portal.app.state.login_throttle
    keys = sorted([key async for key in throttle.redis.scan_iter(match=throttle.prefix + "*")])
    assert keys == [
        throttle.prefix + "account:someone@example.com",
        throttle.prefix + f"address:{ADDRESS}",
    ]
