"""TOTP second factor: enrol and confirm, the two-step sign-in, recovery codes, throttled
codes, the tenant's requirement for staff, and secrets sealed at rest."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pyotp
from httpx import AsyncClient, Response
from sqlalchemy import select

from app.auth.totp.crypto import TotpSecretBox
from app.core.clock import FrozenClock, utcnow
from app.models import RecoveryCode, RefreshToken, TotpCredential
from tests.conftest import make_settings
from tests.factories import PASSWORD, Factory, Person, assert_problem, bearer, count_rows

TOKEN = "/api/v1/auth/token"
MFA = "/api/v1/auth/token/mfa"
START = "/api/v1/me/totp"
CONFIRM = "/api/v1/me/totp/confirm"


def code(secret: str) -> str:
    return pyotp.TOTP(secret).at(utcnow())


async def sign_in(client: AsyncClient, email: str) -> Response:
    return await client.post(TOKEN, data={"username": email, "password": PASSWORD})


async def enrol(client: AsyncClient, person: Person) -> tuple[str, list[str]]:
    started = await client.post(START, headers=person.headers)
    assert started.status_code == 200, started.text
    assert started.headers["cache-control"] == "no-store"
    secret = started.json()["secret"]
    assert started.json()["otpauth_uri"].startswith("otpauth://totp/")
    confirmed = await client.post(CONFIRM, json={"code": code(secret)}, headers=person.headers)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.headers["cache-control"] == "no-store"
    return secret, confirmed.json()["recovery_codes"]


def mfa_token(response: Response, status: int = 401, slug: str = "mfa-required") -> str:
    body = assert_problem(response, status, slug)
    assert response.headers["cache-control"] == "no-store"
    assert "access_token" not in body
    token: str = body["mfa_token"]
    return token


async def test_enrolled_sign_in_takes_two_steps(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    with FrozenClock(datetime.now(UTC)) as clock:
        secret, codes = await enrol(client, world.contact)
        assert len(codes) == len(set(codes)) == 10
        token = mfa_token(await sign_in(client, world.contact.user.email))
        assert await count_rows(factory, RefreshToken) == 0
        # The mfa_token is no access token.
        assert_problem(await client.get("/api/v1/me", headers=bearer(token)), 401)
        clock.advance(seconds=30)  # the confirmation used the current step up
        done = await client.post(MFA, json={"mfa_token": token, "code": code(secret)})
        assert done.status_code == 200, done.text
        assert done.headers["cache-control"] == "no-store"
        me = await client.get("/api/v1/me", headers=bearer(done.json()["access_token"]))
        assert me.status_code == 200
        # The same code again (within its 30 seconds) is refused: each code works once.
        again = await client.post(MFA, json={"mfa_token": token, "code": code(secret)})
        assert_problem(again, 401, "invalid-totp-code")


async def test_a_wrong_code_does_not_confirm(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    started = await client.post(START, headers=world.staff.headers)
    secret = started.json()["secret"]
    wrong = str((int(code(secret)) + 1) % 1_000_000).zfill(6)
    response = await client.post(CONFIRM, json={"code": wrong}, headers=world.staff.headers)
    assert_problem(response, 422, "validation-error")
    assert (await sign_in(client, world.staff.user.email)).status_code == 200  # still off


async def test_a_recovery_code_works_once(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    _, codes = await enrol(client, world.contact)
    first = mfa_token(await sign_in(client, world.contact.user.email))
    used = await client.post(MFA, json={"mfa_token": first, "code": codes[0].upper()})
    assert used.status_code == 200, used.text
    second = mfa_token(await sign_in(client, world.contact.user.email))
    again = await client.post(MFA, json={"mfa_token": second, "code": codes[0]})
    assert_problem(again, 401, "invalid-totp-code")
    other = await client.post(MFA, json={"mfa_token": second, "code": codes[1]})
    assert other.status_code == 200, other.text


async def test_wrong_codes_are_throttled(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    with FrozenClock(datetime.now(UTC)) as clock:
        secret, _ = await enrol(client, world.contact)
        clock.advance(seconds=30)
        token = mfa_token(await sign_in(client, world.contact.user.email))
        for n in range(5):
            wrong = await client.post(MFA, json={"mfa_token": token, "code": f"00000{n}"})
            assert_problem(wrong, 401, "invalid-totp-code")
        right = await client.post(MFA, json={"mfa_token": token, "code": code(secret)})
        assert_problem(right, 429, "sign-in-throttled")
        assert int(right.headers["retry-after"]) >= 1
    assert await count_rows(factory, RefreshToken) == 0  # no session was begun


async def test_an_expired_or_forged_mfa_token_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    with FrozenClock(datetime.now(UTC)) as clock:
        secret, _ = await enrol(client, world.contact)
        token = mfa_token(await sign_in(client, world.contact.user.email))
        clock.advance(seconds=301)
        late = await client.post(MFA, json={"mfa_token": token, "code": code(secret)})
        assert_problem(late, 401, "invalid-mfa-token")
    forged = await client.post(MFA, json={"mfa_token": world.contact.token, "code": "123456"})
    assert_problem(forged, 401, "invalid-mfa-token")


async def test_turning_totp_off_needs_a_code(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    with FrozenClock(datetime.now(UTC)) as clock:
        secret, _ = await enrol(client, world.contact)
        clock.advance(seconds=30)
        headers = world.contact.headers
        wrong = await client.request("DELETE", START, json={"code": "000000"}, headers=headers)
        assert_problem(wrong, 422, "validation-error")
        off = await client.request("DELETE", START, json={"code": code(secret)}, headers=headers)
        assert off.status_code == 204, off.text
    assert await count_rows(factory, TotpCredential) == 0
    assert await count_rows(factory, RecoveryCode) == 0
    assert (await sign_in(client, world.contact.user.email)).status_code == 200


async def test_staff_of_a_tenant_that_requires_it_are_told_to_enrol(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    switched = await client.patch(
        "/api/v1/tenant", json={"staff_totp_required": True}, headers=world.staff.headers
    )
    assert switched.status_code == 200 and switched.json()["staff_totp_required"] is True
    # Clients are not concerned.
    assert (await sign_in(client, world.contact.user.email)).status_code == 200
    refused = await sign_in(client, world.staff.user.email)
    token = mfa_token(refused, 403, "mfa-enrolment-required")
    assert "enrol" in refused.json()["detail"]
    assert await count_rows(factory, RefreshToken) == 1  # the contact's only
    # The enrol token is not a sign-in: it cannot stand in for the second step.
    assert_problem(await client.post(MFA, json={"mfa_token": token, "code": "123456"}), 401)
    with FrozenClock(datetime.now(UTC)) as clock:
        started = await client.post(f"{MFA}/enrol", json={"mfa_token": token})
        assert started.status_code == 200, started.text
        secret = started.json()["secret"]
        done = await client.post(
            f"{MFA}/enrol/confirm", json={"mfa_token": token, "code": code(secret)}
        )
        assert done.status_code == 200, done.text
        assert done.headers["cache-control"] == "no-store"
        assert len(done.json()["recovery_codes"]) == 10
        staff = bearer(done.json()["access_token"])
        clock.advance(seconds=30)
        # Required: it cannot be turned off.
        off = await client.request("DELETE", START, json={"code": code(secret)}, headers=staff)
        assert_problem(off, 409, "totp-required")
    # From now on, the ordinary two steps.
    mfa_token(await sign_in(client, world.staff.user.email))


async def test_secrets_are_sealed_and_codes_hashed(
    client: AsyncClient, factory: Factory, sessionmaker: Any
) -> None:
    world = await factory.world()
    secret, codes = await enrol(client, world.contact)
    async with sessionmaker() as session:
        credential = (await session.execute(select(TotpCredential))).scalar_one()
        hashes = list((await session.execute(select(RecoveryCode.code_hash))).scalars())
    assert secret not in credential.secret_sealed
    assert not set(codes) & set(hashes)
    box = TotpSecretBox(factory.settings)
    assert box.open(credential.secret_sealed, world.contact.id) == secret
    # Bound to its owner, and to the key.
    assert box.open(credential.secret_sealed, uuid.uuid4()) is None
    other = TotpSecretBox(
        make_settings("sqlite+aiosqlite://", factory.settings.data_dir, secret_key="k" * 40)
    )
    assert other.open(credential.secret_sealed, world.contact.id) is None


async def test_enrolling_twice_is_a_conflict(client: AsyncClient, factory: Factory) -> None:
    world = await factory.world()
    await enrol(client, world.contact)
    again = await client.post(START, headers=world.contact.headers)
    assert_problem(again, 409, "totp-already-enabled")
    nothing = await client.post(CONFIRM, json={"code": "123456"}, headers=world.staff.headers)
    assert_problem(nothing, 409, "totp-not-enrolled")
