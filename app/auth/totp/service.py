"""TOTP (RFC 6238) as a second factor: enrol, confirm, turn off, and the second step of
sign-in. Codes are throttled like passwords (app/auth/throttle), each accepted once."""

from __future__ import annotations

import hmac
import uuid

import pyotp
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.errors import SignInThrottled
from app.auth.throttle import LoginThrottle
from app.auth.throttle.errors import AttemptsThrottled
from app.auth.totp.crypto import (
    MfaPurpose,
    TotpSecretBox,
    create_mfa_token,
    new_recovery_codes,
    normalise_recovery_code,
    read_mfa_token,
)
from app.auth.totp.errors import (
    InvalidMfaToken,
    MfaEnrolmentRequired,
    MfaRequired,
    TotpAlreadyOn,
    TotpNotEnrolled,
    TotpRequiredForStaff,
    WrongCode,
    WrongCodeOnAccount,
)
from app.auth.totp.repository import TotpRepository
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.errors import AppError
from app.core.security import sha256_hex
from app.models import TotpCredential, User

ISSUER = "Billing portal"


async def require_second_factor(session: AsyncSession, settings: Settings, user: User) -> None:
    """After a right password: ask for a code when the person has TOTP on; tell staff of a
    tenant that requires it, and who have none yet, to enrol. Else nothing."""
    repo = TotpRepository(session)
    credential = await repo.credential(user.id)
    if credential is not None and credential.confirmed_at is not None:
        raise MfaRequired(create_mfa_token(settings, user.id, "verify"))
    if user.role == "staff" and await repo.staff_must_use_totp(user.tenant_id):
        raise MfaEnrolmentRequired(create_mfa_token(settings, user.id, "enrol"))


class TotpService:
    def __init__(self, session: AsyncSession, settings: Settings, throttle: LoginThrottle) -> None:
        self.session = session
        self.settings = settings
        self.throttle = throttle
        self.repo = TotpRepository(session)
        self.box = TotpSecretBox(settings)

    async def start(self, user: User) -> tuple[str, str]:
        """A new secret (replacing an unconfirmed one) and its otpauth:// URI."""
        credential = await self.repo.credential(user.id)
        if credential is not None and credential.confirmed_at is not None:
            raise TotpAlreadyOn()
        await self.repo.remove(user.id)
        secret = pyotp.random_base32()
        await self.repo.add(
            TotpCredential(user_id=user.id, secret_sealed=self.box.seal(secret, user.id))
        )
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
        return secret, uri

    async def confirm(self, user: User, code: str, address: str) -> list[str]:
        """Turn TOTP on with a first code; the ten recovery codes, in clear this once."""
        credential = await self.repo.credential(user.id)
        if credential is None or credential.confirmed_at is not None:
            raise TotpNotEnrolled()
        await self._check(
            user, credential, code, address, recovery=False, wrong=WrongCodeOnAccount()
        )
        credential.confirmed_at = utcnow()
        codes = new_recovery_codes()
        await self.repo.replace_recovery_codes(user.id, [sha256_hex(c) for c in codes])
        return codes

    async def disable(self, user: User, code: str, address: str) -> None:
        credential = await self.repo.credential(user.id)
        if credential is None or credential.confirmed_at is None:
            raise TotpNotEnrolled()
        if user.role == "staff" and await self.repo.staff_must_use_totp(user.tenant_id):
            raise TotpRequiredForStaff()
        await self._check(
            user, credential, code, address, recovery=True, wrong=WrongCodeOnAccount()
        )
        await self.repo.remove(user.id)

    async def user_for_token(self, mfa_token: str, purpose: MfaPurpose) -> User:
        read = read_mfa_token(self.settings, mfa_token)
        if read is None or read[1] != purpose:
            raise InvalidMfaToken()
        user = await self.repo.user(read[0])
        if user is None or not user.is_active:
            raise InvalidMfaToken()
        return user

    async def sign_in_step(self, mfa_token: str, code: str, address: str) -> User:
        """The second step of sign-in: the person whose code (or recovery code) is right."""
        user = await self.user_for_token(mfa_token, "verify")
        credential = await self.repo.credential(user.id)
        if credential is None or credential.confirmed_at is None:
            raise InvalidMfaToken()
        await self._check(user, credential, code, address, recovery=True, wrong=WrongCode())
        return user

    async def _check(
        self,
        user: User,
        credential: TotpCredential,
        code: str,
        address: str,
        *,
        recovery: bool,
        wrong: AppError,
    ) -> None:
        attempt = await self.throttle.admit("totp", str(user.id), address, session=self.session)
        if attempt.retry_after is not None:
            if isinstance(wrong, WrongCode):
                raise SignInThrottled(
                    "Too many wrong codes. Wait before trying again.",
                    retry_after=attempt.retry_after,
                )
            raise AttemptsThrottled(retry_after=attempt.retry_after)
        if not (
            self._totp_matches(credential, code) or (recovery and await self._spend(user.id, code))
        ):
            raise wrong
        await self.throttle.succeeded(attempt, session=self.session)

    def _totp_matches(self, credential: TotpCredential, code: str) -> bool:
        secret = self.box.open(credential.secret_sealed, credential.user_id)
        code = code.strip().replace(" ", "")
        if secret is None or not code.isdigit() or len(code) != 6:
            return False
        totp = pyotp.TOTP(secret)
        now_step = totp.timecode(utcnow())
        # One step either side for clocks a little off; a step once used is used up.
        for step in (now_step - 1, now_step, now_step + 1):
            if step <= (credential.last_step or -1):
                continue
            if hmac.compare_digest(totp.generate_otp(step), code):
                credential.last_step = step
                return True
        return False

    async def _spend(self, user_id: uuid.UUID, code: str) -> bool:
        found = await self.repo.unused_recovery_code(
            user_id, sha256_hex(normalise_recovery_code(code))
        )
        if found is None:
            return False
        found.used_at = utcnow()
        return True
