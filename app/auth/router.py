"""Sign-in and the signed-in person's own account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from app.auth.dependencies import CallerDep, UserDep
from app.auth.forms import SignInForm
from app.auth.password_reset import PasswordResetService
from app.auth.repository import AuthRepository
from app.auth.schemas import (
    ChangePasswordRequest,
    CompanyRef,
    LogoutRequest,
    Me,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    SwitchClientRequest,
    TokenPair,
)
from app.auth.service import AuthService, IssuedTokens
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import problem_responses

router = APIRouter(tags=["auth"])


def _pair(tokens: IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        must_change_password=tokens.must_change_password,
    )


@router.post(
    "/auth/token",
    operation_id="signIn",
    response_model=TokenPair,
    responses=problem_responses(401, 403, 422, 429),
)
async def sign_in(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    form: Annotated[SignInForm, Depends()],
) -> TokenPair:
    """Sign in with email and password (OAuth2 password grant, form-encoded)."""
    address = request.client.host if request.client else "unknown"
    service = AuthService(session, settings)
    tokens = await service.sign_in(
        email=form.username,
        password=form.password,
        address=address,
        throttle=request.app.state.login_throttle,
    )
    response.headers["Cache-Control"] = "no-store"  # tokens must not sit in any cache
    return _pair(tokens)


@router.post(
    "/auth/refresh",
    operation_id="refreshToken",
    response_model=TokenPair,
    responses=problem_responses(401, 422),
)
async def refresh(
    body: RefreshRequest, response: Response, session: SessionDep, settings: SettingsDep
) -> TokenPair:
    """Trade a refresh token for a new pair; the one given is spent."""
    tokens = await AuthService(session, settings).refresh(body.refresh_token)
    response.headers["Cache-Control"] = "no-store"
    return _pair(tokens)


@router.post(
    "/auth/logout",
    operation_id="logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 422),
)
async def logout(
    body: LogoutRequest, user: UserDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """End the session the refresh token belongs to."""
    await AuthService(session, settings).sign_out(user, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/switch-client",
    operation_id="switchClient",
    response_model=TokenPair,
    responses=problem_responses(401, 403, 404, 422),
)
async def switch_client(
    body: SwitchClientRequest,
    caller: CallerDep,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
) -> TokenPair:
    """Act for another company you are a contact of: a new token pair for it; the current
    session ends."""
    tokens = await AuthService(session, settings).switch_client(
        user, body.client_id, current_session=caller.session_id
    )
    return _pair(tokens)


@router.post(
    "/auth/password-reset",
    operation_id="requestPasswordReset",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    responses=problem_responses(422, 429),
)
async def request_password_reset(
    body: PasswordResetRequest, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """Email a password reset link (valid 30 minutes, once). The answer is the same whether
    or not the email has an account."""
    address = request.client.host if request.client else "unknown"
    await PasswordResetService(session, settings).request(body.email, address)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/auth/password-reset/confirm",
    operation_id="confirmPasswordReset",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(422),
)
async def confirm_password_reset(
    body: PasswordResetConfirm, session: SessionDep, settings: SettingsDep
) -> Response:
    """Set a new password with the token from a reset link; every session ends."""
    await PasswordResetService(session, settings).confirm(body.token, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", operation_id="getMe", response_model=Me, responses=problem_responses(401, 403))
async def get_me(caller: CallerDep, user: UserDep, session: SessionDep) -> Me:
    """The signed-in person, the companies they belong to and the one they act for."""
    companies = await AuthRepository(session).companies(user) if user.role == "client" else []
    me = Me.model_validate(user)
    return me.model_copy(
        update={
            "client_id": caller.principal.client_id,
            "clients": [CompanyRef.model_validate(c) for c in companies],
        }
    )


@router.post(
    "/me/password",
    operation_id="changePassword",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 422, 429),
)
async def change_password(
    request: Request,
    body: ChangePasswordRequest,
    caller: CallerDep,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Set a new password; every other session ends and older access tokens stop working."""
    await AuthService(session, settings).change_password(
        user,
        current=body.current_password,
        new=body.new_password,
        session_family=caller.session_id,
        throttle=request.app.state.login_throttle,
        address=request.client.host if request.client else "unknown",
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
