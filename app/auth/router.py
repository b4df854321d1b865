"""Sign-in and the signed-in person's own account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from app.auth.dependencies import CallerDep, UserDep
from app.auth.forms import SignInForm
from app.auth.schemas import ChangePasswordRequest, LogoutRequest, Me, RefreshRequest, TokenPair
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


@router.get("/me", operation_id="getMe", response_model=Me, responses=problem_responses(401, 403))
async def get_me(user: UserDep) -> Me:
    """The signed-in person."""
    return Me.model_validate(user)


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
