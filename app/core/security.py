"""Password hashing (argon2id), access tokens (JWT, HS256 pinned) and opaque secrets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jose import JWTError, jwt
from passlib.context import CryptContext

from app.core.clock import utcnow
from app.core.config import Settings

JWT_ALGORITHM = "HS256"
CLOCK_SKEW_SECONDS = 30
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret

# OWASP's argon2id baseline is m=19 MiB, t=2, p=1; we spend a little more memory.
_password_context = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=19 * 1024,
    argon2__time_cost=2,
    argon2__parallelism=1,
)
# Verified against when the email is unknown, so both paths cost the same.
_DUMMY_HASH = _password_context.hash(secrets.token_urlsafe(16))

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 128


def hash_password(password: str) -> str:
    return str(_password_context.hash(password))


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _password_context.verify(password, _DUMMY_HASH)
        return False
    try:
        return bool(_password_context.verify(password, password_hash))
    except (ValueError, TypeError):
        return False


def _hashing_threads() -> int:
    """Cores for argon2 at once: all but one, so that the event loop (every other request of
    the process) always keeps a core however many sign-ins arrive together."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


# argon2 releases the GIL while it hashes, so each thread here takes a whole core. asyncio's
# default executor has up to cores + 4 threads: a burst of sign-ins in it would leave the event
# loop one core's share among six or more hashing threads, and every read of the process would
# slow down with it. Here the burst queues instead (each sign-in waits its turn: ~20 ms of CPU
# per hash) and the loop keeps its core. Threads start on first use.
_HASHING = ThreadPoolExecutor(max_workers=_hashing_threads(), thread_name_prefix="argon2")


async def hash_password_off_loop(password: str) -> str:
    """`hash_password` in a worker thread of its own, bounded pool: argon2 spends ~20-50 ms of
    CPU by design, which on the event loop would stall every other request of the process."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


async def verify_password_off_loop(password: str, password_hash: str | None) -> bool:
    """`verify_password` in the hashing pool (see `hash_password_off_loop`)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_HASHING, verify_password, password, password_hash)


def password_problem(password: str, email: str) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"The password must be at least {PASSWORD_MIN_LENGTH} characters long."
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"The password must be at most {PASSWORD_MAX_LENGTH} characters long."
    lowered = password.strip().lower()
    local_part = email.split("@", 1)[0].lower()
    if lowered in {email.lower(), local_part}:
        return "The password must not be your email address."
    return None


def generate_temporary_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, ~120 bits


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_refresh_token() -> str:
    return "rt_" + secrets.token_urlsafe(32)


def new_password_reset_token() -> str:
    return "prt_" + secrets.token_urlsafe(32)


API_KEY_PREFIX = "bpk_"


def new_api_key() -> tuple[str, str]:
    """A fresh integration key: (prefix used to find it, the whole secret shown once)."""
    prefix = API_KEY_PREFIX + secrets.token_hex(6)
    return prefix, f"{prefix}.{secrets.token_urlsafe(32)}"


def split_api_key(key: str) -> str | None:
    """The prefix of something that looks like one of our API keys, else None."""
    if not key.startswith(API_KEY_PREFIX) or "." not in key:
        return None
    prefix = key.split(".", 1)[0]
    return prefix if len(prefix) == len(API_KEY_PREFIX) + 12 else None


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    token_version: int
    session_id: uuid.UUID | None
    # The company a client contact acts for (None for staff).
    client_id: uuid.UUID | None = None


class InvalidToken(Exception):
    pass


def create_access_token(
    settings: Settings,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    token_version: int,
    session_id: uuid.UUID,
    client_id: uuid.UUID | None = None,
) -> str:
    now = utcnow()
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "tid": str(tenant_id),
        "ver": token_version,
        "sid": str(session_id),
        "typ": ACCESS_TOKEN_TYPE,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.access_token_ttl_seconds)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if client_id is not None:
        claims["cid"] = str(client_id)
    return str(jwt.encode(claims, settings.signing_key, algorithm=JWT_ALGORITHM))


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    try:
        header = jwt.get_unverified_header(token)
        # Pin the algorithm before anything else: "none" and RS/HS confusion end here.
        if header.get("alg") != JWT_ALGORITHM:
            raise InvalidToken("unexpected algorithm")
        claims = jwt.decode(
            token,
            settings.signing_key,
            algorithms=[JWT_ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            # python-jose skips the audience check when the claim is absent: require it.
            # No require_exp: jose turns it into its own wall-clock check. A missing exp
            # fails below (KeyError), like any other malformed token.
            options={
                "require_iat": True,
                "require_sub": True,
                "require_aud": True,
                "require_iss": True,
                # Time is checked below against the service's clock (app.core.clock), the
                # one source of "now" that tests can move; jose would use the wall clock.
                "verify_exp": False,
                "verify_nbf": False,
            },
        )
        now = int(utcnow().timestamp())
        if "exp" not in claims or int(claims["exp"]) <= now:
            raise InvalidToken("expired")
        if int(claims.get("nbf", claims["iat"])) > now + CLOCK_SKEW_SECONDS:
            raise InvalidToken("not valid yet")
        if claims.get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidToken("not an access token")
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            tenant_id=uuid.UUID(claims["tid"]),
            token_version=int(claims["ver"]),
            session_id=uuid.UUID(claims["sid"]) if claims.get("sid") else None,
            client_id=uuid.UUID(claims["cid"]) if claims.get("cid") else None,
        )
    except (JWTError, KeyError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc
