"""TOTP endpoints: a signed-in person's own enrolment, and the second step of sign-in."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.auth.dependencies import UserDep
from app.auth.schemas import TokenPair
from app.auth.service import AuthService
from app.auth.totp.schemas import (
    EnrolledSignIn,
    MfaSignIn,
    MfaTokenBody,
    RecoveryCodes,
    TotpCode,
    TotpEnrolment,
)
from app.auth.totp.service import TotpService
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import problem_responses

router = APIRouter(tags=["auth"])
NO_STORE = {"Cache-Control": "no-store"}


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _service(request: Request, session: SessionDep, settings: SettingsDep) -> TotpService:
    return TotpService(session, settings, request.app.state.login_throttle)


@router.post(
    "/me/totp",
    operation_id="startTotp",
    response_model=TotpEnrolment,
    responses=problem_responses(401, 403, 409),
)
async def start_totp(
    request: Request, response: Response, user: UserDep, session: SessionDep, settings: SettingsDep
) -> TotpEnrolment:
    """A new TOTP secret, not active until confirmed with a code from it."""
    secret, uri = await _service(request, session, settings).start(user)
    response.headers.update(NO_STORE)
    return TotpEnrolment(secret=secret, otpauth_uri=uri)


@router.post(
    "/me/totp/confirm",
    operation_id="confirmTotp",
    response_model=RecoveryCodes,
    responses=problem_responses(401, 403, 409, 422, 429),
)
async def confirm_totp(
    request: Request,
    response: Response,
    body: TotpCode,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
) -> RecoveryCodes:
    """Turn TOTP on with a first code; answers the ten recovery codes, shown once."""
    codes = await _service(request, session, settings).confirm(user, body.code, _address(request))
    response.headers.update(NO_STORE)
    return RecoveryCodes(recovery_codes=codes)


@router.delete(
    "/me/totp",
    operation_id="disableTotp",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 409, 422, 429),
)
async def disable_totp(
    request: Request, body: TotpCode, user: UserDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """Turn TOTP off with a current code or a recovery code."""
    await _service(request, session, settings).disable(user, body.code, _address(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/token/mfa",
    operation_id="signInMfa",
    response_model=TokenPair,
    responses=problem_responses(401, 422, 429),
)
async def sign_in_mfa(
    request: Request,
    response: Response,
    body: MfaSignIn,
    session: SessionDep,
    settings: SettingsDep,
) -> TokenPair:
    """Second step of sign-in: the `mfa_token` from `mfa-required` and a TOTP or recovery code."""
    service = _service(request, session, settings)
    user = await service.sign_in_step(body.mfa_token, body.code, _address(request))
    tokens = await AuthService(session, settings).complete_sign_in(user)
    response.headers.update(NO_STORE)
    return TokenPair(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        must_change_password=tokens.must_change_password,
    )


@router.post(
    "/auth/token/mfa/enrol",
    operation_id="startTotpAtSignIn",
    response_model=TotpEnrolment,
    responses=problem_responses(401, 409, 422),
)
async def start_totp_at_sign_in(
    request: Request,
    response: Response,
    body: MfaTokenBody,
    session: SessionDep,
    settings: SettingsDep,
) -> TotpEnrolment:
    """For staff told `mfa-enrolment-required`: a TOTP secret, with that answer's mfa_token."""
    service = _service(request, session, settings)
    user = await service.user_for_token(body.mfa_token, "enrol")
    secret, uri = await service.start(user)
    response.headers.update(NO_STORE)
    return TotpEnrolment(secret=secret, otpauth_uri=uri)


@router.post(
    "/auth/token/mfa/enrol/confirm",
    operation_id="confirmTotpAtSignIn",
    response_model=EnrolledSignIn,
    responses=problem_responses(401, 409, 422, 429),
)
async def confirm_totp_at_sign_in(
    request: Request,
    response: Response,
    body: MfaSignIn,
    session: SessionDep,
    settings: SettingsDep,
) -> EnrolledSignIn:
    """Turn TOTP on with a first code and sign in: the token pair and ten recovery codes."""
    service = _service(request, session, settings)
    user = await service.user_for_token(body.mfa_token, "enrol")
    codes = await service.confirm(user, body.code, _address(request))
    tokens = await AuthService(session, settings).complete_sign_in(user)
    response.headers.update(NO_STORE)
    return EnrolledSignIn(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        must_change_password=tokens.must_change_password,
        recovery_codes=codes,
    )
