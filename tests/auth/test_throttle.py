"""Sign-in throttling: (account, address), account and address counters, counted atomically
in the database (SQLite or PostgreSQL, whichever the suite runs on) or in Redis.

Every test runs on both backends: an app on the suite's database, and one with `redis_url`
set. Each Redis app uses a key prefix of its own and deletes only its own keys.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import event, select

from app.auth import credentials
from app.auth.throttle.stores import DatabaseCounterStore, RedisCounterStore
from app.core.clock import FrozenClock
from app.core.config import Settings
from app.main import create_app
from app.models import RefreshToken, ThrottleCounter
from tests.conftest import make_settings
from tests.factories import PASSWORD, Factory, assert_problem, bearer, count_rows

REDIS_URL = os.environ.get("BILLING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ADDRESS = "203.0.113.7"
WRONG = "definitely not the password"
# Small limits, so the tests reach every one of them quickly.
LIMITS = {
    "login_max_failures": 5,
    "login_account_max_failures": 8,
    "login_address_max_failures": 12,
}


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

    async def stored_keys(self) -> list[str]:
        store = self.app.state.login_throttle.store
        if isinstance(store, RedisCounterStore):
            keys = [key async for key in store.redis.scan_iter(match=store.prefix + "*")]
            return sorted(key.removeprefix(store.prefix) for key in keys)
        async with self.app.state.sessionmaker() as session:
            return sorted((await session.execute(select(ThrottleCounter.key))).scalars())

    async def aclose(self) -> None:
        for http in self._clients.values():
            await http.aclose()


@pytest.fixture(params=["database", "redis"])
async def portal(
    request: pytest.FixtureRequest, app: Any, database_url: str, data_dir: Path
) -> AsyncIterator[Portal]:
    redis_url = REDIS_URL if request.param == "redis" else None
    settings = make_settings(database_url, data_dir, redis_url=redis_url, **LIMITS)
    portal_app = create_app(settings)
    store = portal_app.state.login_throttle.store
    if redis_url:
        assert isinstance(store, RedisCounterStore)
        store.prefix = f"bp-test:{uuid.uuid4().hex}:"
    else:
        assert isinstance(store, DatabaseCounterStore)
    portal = Portal(portal_app, request.param, settings)
    try:
        yield portal
    finally:
        await portal.aclose()
        if isinstance(store, RedisCounterStore):
            keys = [key async for key in store.redis.scan_iter(match=store.prefix + "*")]
            if keys:
                await store.redis.delete(*keys)
        await portal_app.state.login_throttle.aclose()
        await portal_app.state.engine.dispose()


def address(n: int) -> str:
    return f"198.51.100.{n}"


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


def assert_throttled(response: Response, window: int, slug: str = "sign-in-throttled") -> int:
    assert_problem(response, 429, slug)
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window
    assert "access_token" not in response.text
    return retry_after


def count_verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every password hash checked at sign-in, counted."""
    checked: list[int] = []
    real = credentials.verify_password_off_loop

    async def counting(password: str, password_hash: str | None) -> bool:
        checked.append(1)
        return await real(password, password_hash)

    monkeypatch.setattr(credentials, "verify_password_off_loop", counting)
    return checked


async def test_five_failures_from_one_address_lock_the_account_there(
    portal: Portal, factory: Factory
) -> None:
    world = await factory.world()
    email = world.staff.user.email
    window = portal.settings.login_window_seconds
    with FrozenClock(datetime.now(UTC)):
        for n in range(5):
            typed = email.upper() if n % 2 else email  # the case does not make another account
            assert_problem(await portal.sign_in(typed, WRONG), 401, "invalid-credentials")
        locked = await portal.sign_in(email, PASSWORD)
        assert assert_throttled(locked, window) == window
        assert await count_rows(factory, RefreshToken) == 0
        # The owner from their own address, and others behind the guesser's address, are fine.
        assert (await portal.sign_in(email, PASSWORD, address=address(1))).status_code == 200
        other = await portal.sign_in(world.contact.user.email, PASSWORD)
        assert other.status_code == 200, other.text


async def test_guesses_spread_over_addresses_lock_the_account_at_its_own_limit(
    portal: Portal, factory: Factory
) -> None:
    world = await factory.world()
    email = world.staff.user.email
    with FrozenClock(datetime.now(UTC)):
        for n in range(LIMITS["login_account_max_failures"]):
            response = await portal.sign_in(email, WRONG, address=address(n))
            assert_problem(response, 401, "invalid-credentials")
        locked = await portal.sign_in(email, PASSWORD, address=address(99))
        assert_throttled(locked, portal.settings.login_window_seconds)


async def test_an_unknown_email_is_throttled_exactly_the_same(
    portal: Portal, factory: Factory
) -> None:
    world = await factory.world()
    known = world.staff.user.email
    unknown = f"nobody-{uuid.uuid4().hex[:6]}@example.com"
    answers: dict[str, list[Response]] = {known: [], unknown: []}
    with FrozenClock(datetime.now(UTC)):
        for email, where in ((known, address(1)), (unknown, address(2))):
            for _ in range(6):
                answers[email].append(await portal.sign_in(email, WRONG, address=where))
    for email in (known, unknown):
        assert [r.status_code for r in answers[email]] == [401] * 5 + [429], email
    for a, b in zip(answers[known], answers[unknown], strict=True):
        assert a.headers["content-type"] == b.headers["content-type"]
        assert a.headers.get("retry-after") == b.headers.get("retry-after")
        assert without_request_id(a.json()) == without_request_id(b.json())


async def test_the_address_ceiling_spares_accounts_known_at_that_address(
    portal: Portal, factory: Factory
) -> None:
    world = await factory.world()
    colleague = world.contact.user.email
    ceiling = LIMITS["login_address_max_failures"]
    with FrozenClock(datetime.now(UTC)):
        # The colleague signed in from the office before; the staff member never did.
        assert (await portal.sign_in(colleague, PASSWORD)).status_code == 200
        for n in range(ceiling):
            response = await portal.sign_in(f"guess-{n}@example.com", WRONG)
            assert_problem(response, 401, "invalid-credentials")
        assert_throttled(await portal.sign_in("guess-x@example.com", WRONG), 900)
        assert_throttled(await portal.sign_in(world.staff.user.email, PASSWORD), 900)
        still_in = await portal.sign_in(colleague, PASSWORD)
        assert still_in.status_code == 200, still_in.text
        # The staff member from anywhere else is not affected.
        elsewhere = await portal.sign_in(world.staff.user.email, PASSWORD, address=address(7))
        assert elsewhere.status_code == 200, elsewhere.text


async def test_throttled_attempts_do_not_use_up_the_other_counters(
    portal: Portal, factory: Factory
) -> None:
    """A guesser stopped at the (account, address) limit who keeps going does not lock the
    account out for its owner elsewhere (the account limit counts only checked attempts)."""
    world = await factory.world()
    email = world.staff.user.email
    with FrozenClock(datetime.now(UTC)):
        for _ in range(30):
            await portal.sign_in(email, WRONG)
        ok = await portal.sign_in(email, PASSWORD, address=address(3))
        assert ok.status_code == 200, ok.text


async def test_the_lock_lifts_when_the_window_has_passed(portal: Portal, factory: Factory) -> None:
    world = await factory.world()
    email = world.contact.user.email
    window = portal.settings.login_window_seconds
    with FrozenClock(datetime.now(UTC)) as clock:
        for _ in range(5):
            await portal.sign_in(email, WRONG)
            clock.advance(seconds=10)  # failures spread over 40 seconds
        first = await portal.sign_in(email, PASSWORD)
        # The window opened with the first failure, 50 seconds ago.
        assert assert_throttled(first, window) == window - 50
        clock.advance(seconds=window - 51)
        # Throttled attempts do not push the lock further out.
        assert assert_throttled(await portal.sign_in(email, WRONG), window) == 1
        clock.advance(seconds=1)
        allowed = await portal.sign_in(email, PASSWORD)
        assert allowed.status_code == 200, allowed.text


async def test_a_success_resets_the_account_count(portal: Portal, factory: Factory) -> None:
    world = await factory.world()
    email = world.staff.user.email
    with FrozenClock(datetime.now(UTC)):
        for _ in range(4):
            assert (await portal.sign_in(email, WRONG)).status_code == 401
        ok = await portal.sign_in(email, PASSWORD)
        assert ok.status_code == 200, ok.text
        assert ok.headers["cache-control"] == "no-store"
        for _ in range(4):
            assert (await portal.sign_in(email, WRONG)).status_code == 401
        again = await portal.sign_in(email, PASSWORD)
        assert again.status_code == 200, again.text


async def test_what_was_typed_is_never_stored(portal: Portal, factory: Factory) -> None:
    # A card number typed as the username is refused before anything is counted.
    refused = await portal.sign_in("4111 1111 1111 1111", WRONG)
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("card-number-refused")
    assert await portal.stored_keys() == []
    # Whatever else was typed is kept only as a keyed hash.
    typed = "Typed.Person@Example.com"
    await portal.sign_in(typed, WRONG)
    keys = await portal.stored_keys()
    assert len(keys) == 3  # (account, address), account, address
    for key in keys:
        assert len(key) == 64 and int(key, 16) >= 0  # an HMAC-SHA256, hex
        assert "typed" not in key.lower() and ADDRESS not in key
    expected_rows = 3 if portal.backend == "database" else 0
    assert await count_rows(factory, ThrottleCounter) == expected_rows


async def test_fifty_concurrent_guesses_check_at_most_the_limit(
    portal: Portal, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await factory.world()
    checked = count_verifications(monkeypatch)
    answers = await asyncio.gather(
        *(portal.sign_in(world.staff.user.email, WRONG) for _ in range(50))
    )
    limit = LIMITS["login_max_failures"]
    assert len(checked) == limit
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [401] * limit + [429] * (50 - limit)


async def test_no_connection_is_held_while_the_password_is_checked(
    portal: Portal, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await factory.world()
    engine = portal.app.state.engine.sync_engine
    held: list[int] = []
    out = [0]

    def checkout(*_: Any) -> None:
        out[0] += 1

    def checkin(*_: Any) -> None:
        out[0] -= 1

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    real = credentials.verify_password_off_loop

    async def watching(password: str, password_hash: str | None) -> bool:
        held.append(out[0])
        return await real(password, password_hash)

    monkeypatch.setattr(credentials, "verify_password_off_loop", watching)
    try:
        ok = await portal.sign_in(world.staff.user.email, PASSWORD)
        assert ok.status_code == 200, ok.text
        assert (await portal.sign_in(world.staff.user.email, WRONG)).status_code == 401
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)
    assert held == [0, 0]
    assert out[0] == 0


async def test_wrong_current_passwords_are_throttled(portal: Portal, factory: Factory) -> None:
    world = await factory.world()
    headers = world.contact.headers
    http = portal.http()

    def change(current: str) -> Awaitable[Response]:
        body = {"current_password": current, "new_password": "a brand new passphrase"}
        return http.post("/api/v1/me/password", json=body, headers=headers)

    with FrozenClock(datetime.now(UTC)):
        for _ in range(5):
            assert_problem(await change(WRONG), 422, "validation-error")
        locked = await change(PASSWORD)
        assert_throttled(locked, portal.settings.login_window_seconds, "too-many-attempts")
    assert (
        await portal.sign_in(world.contact.user.email, PASSWORD, address=address(5))
    ).status_code == 200


async def test_concurrent_wrong_current_passwords_check_at_most_the_limit(
    portal: Portal, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.auth import service

    world = await factory.world()
    checked: list[int] = []
    real = service.verify_password_off_loop

    async def counting(password: str, password_hash: str | None) -> bool:
        checked.append(1)
        return await real(password, password_hash)

    monkeypatch.setattr(service, "verify_password_off_loop", counting)
    body = {"current_password": WRONG, "new_password": "a brand new passphrase"}
    send: Callable[[], Awaitable[Response]] = lambda: portal.http().post(  # noqa: E731
        "/api/v1/me/password", json=body, headers=bearer(world.contact.token)
    )
    answers = await asyncio.gather(*(send() for _ in range(20)))
    assert len(checked) == LIMITS["login_max_failures"]
    assert sorted(r.status_code for r in answers) == [422] * 5 + [429] * 15
