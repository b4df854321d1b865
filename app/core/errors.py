"""Errors as RFC 9457 problem+json, for every 4xx and 5xx the service answers.

Domain errors subclass `AppError` and carry their status, problem type and title, so a
service raises `InvoiceNotFound()` and never thinks about HTTP. Nothing that leaves the
process ever carries a traceback or SQL text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.db_unavailable import database_unavailable_reason

logger = logging.getLogger("billing_portal.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Every problem type is a section of docs/errors.md, whose anchor is the type's slug: the
# published copy of that file lives here. A client compares the whole URI, so it never changes
# with the deployment.
PROBLEM_TYPES_URL = "https://billing-portal.dev/docs/errors.md"
# How long a client is asked to wait when the database is unavailable: long enough not to
# pile retries on a restarting server, short enough that a failover is barely noticed.
DATABASE_RETRY_AFTER_SECONDS = 5


def problem_type_uri(slug: str) -> str:
    """The `type` of a problem: its section of docs/errors.md (the anchor is the slug)."""
    return f"{PROBLEM_TYPES_URL}#{slug}"


def status_slug(status: int) -> str:
    """The slug of a problem the framework raises with a bare status (405 ...): its phrase."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return phrase.lower().replace(" ", "-").replace("'", "")


class AppError(Exception):
    """A failure that the caller should see, with its HTTP status and problem type."""

    status: ClassVar[int] = 400
    type_slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    default_detail: ClassVar[str] = "The request could not be processed."
    # An error that is itself an outcome to keep (a failed sign-in counted, a declined
    # payment recorded): the request boundary commits before answering with it.
    persist_changes: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(self.detail)


class NotFound(AppError):
    status = 404
    type_slug = "not-found"
    title = "Not found"
    default_detail = "The resource does not exist."


class Unauthorized(AppError):
    status = 401
    type_slug = "unauthorized"
    title = "Unauthorized"
    default_detail = "Missing or invalid credentials."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status = 403
    type_slug = "forbidden"
    title = "Forbidden"
    default_detail = "You are not allowed to do this."


class Conflict(AppError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"
    default_detail = "The request conflicts with the current state of the resource."


class PreconditionFailed(AppError):
    status = 412
    type_slug = "precondition-failed"
    title = "Precondition failed"
    default_detail = "The resource changed since you read it: fetch it again and retry."


class PayloadTooLarge(AppError):
    status = 413
    type_slug = "payload-too-large"
    title = "Payload too large"


class Unprocessable(AppError):
    """A well-formed request whose content breaks a rule (422, with an `errors` list)."""

    status = 422
    type_slug = "validation-error"
    title = "Validation error"

    def __init__(self, detail: str, *, loc: Sequence[str | int] = ("body",)) -> None:
        super().__init__(detail, extra={"errors": [{"loc": list(loc), "msg": detail}]})


class TooManyRequests(AppError):
    status = 429
    type_slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(AppError):
    status = 503
    type_slug = "service-unavailable"
    title = "Service unavailable"


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (`application/problem+json`). `type` names the kind
    of problem for programs; `title` and `detail` are for people. Some problems add members of
    their own (a decline's `decline_code` and `payment_id` ...); any other is kept too."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="A URI naming the kind of problem: its section of the errors document "
        "(docs/errors.md; the part after `#` is the problem's slug). Compare it, not `title`."
    )
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time, for a person to read.")
    instance: str | None = Field(default=None, description="The path the request was sent to.")
    request_id: str | None = Field(
        default=None, description="The request's `X-Request-Id`: quote it when reporting a fault."
    )
    decline_code: str | None = Field(
        default=None, description="A declined payment: the gateway's reason (`card_declined` ...)."
    )
    payment_id: str | None = Field(
        default=None, description="The payment this problem is about (kept in the history)."
    )
    payment_status: str | None = Field(
        default=None, description="The payment's status when it is not settled (`pending`)."
    )
    refund_id: str | None = Field(default=None, description="The refund this problem is about.")
    refund_status: str | None = Field(
        default=None, description="The refund's status when it is not settled (`pending`)."
    )
    code: str | None = Field(
        default=None, description="A refused payment method: the gateway's reason."
    )


class FieldError(BaseModel):
    """One reason a request was refused: where (`loc`) and why (`msg`)."""

    loc: list[str | int] = Field(
        description='Where: `["body", "lines", 0, "quantity"]`, `["query", "limit"]` ...'
    )
    msg: str = Field(description="Why, for a person to read.")
    type: str | None = Field(default=None, description="The kind of error, for programs.")


class ValidationProblem(Problem):
    """A request refused as invalid (422), with every reason in `errors`."""

    errors: list[FieldError] = Field(description="Every reason the request was refused.")


def problem_response(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_slug: str | None = None,
    request: Request | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": problem_type_uri(type_slug or status_slug(status)),
        "title": title or phrase,
        "status": status,
        "detail": detail or phrase,
    }
    if request is not None:
        body["instance"] = request.url.path
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["request_id"] = request_id
    body.update(extra or {})
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=dict(headers or {})
    )


def database_unavailable_response(request: Request) -> JSONResponse:
    return problem_response(
        503,
        detail="The service is temporarily unavailable; retry shortly.",
        type_slug="service-unavailable",
        request=request,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def unexpected_error_response(
    request: Request, exc: BaseException, *, inside_request_context: bool = True
) -> JSONResponse:
    logger.error("unhandled error", exc_info=exc)
    # Sent from outside the request-id middleware, this answer adds the header itself: the
    # one error whose id the caller most needs to quote.
    request_id = getattr(request.state, "request_id", None)
    return problem_response(
        500,
        detail="An unexpected error occurred. Quote the request id when reporting it.",
        type_slug="internal-error",
        request=request,
        headers=None if inside_request_context or not request_id else {"X-Request-ID": request_id},
    )


class ContainUnexpectedErrors:
    """Answers an error that no exception handler took with the generic 500 problem, and
    ends it here.

    Left alone, Starlette's outermost ServerErrorMiddleware answers it and then re-raises it
    to the server, which logs a second traceback as loose text and closes the client's
    keep-alive connection. Installed innermost, so the request id is still known when the
    error is logged. After the response has started there is nothing left to answer: the
    error is logged once and the server ends the incomplete response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:
                logger.error("unhandled error after the response started", exc_info=exc)
                return
            response = unexpected_error_response(Request(scope), exc)
            await response(scope, receive, send)


def _clean_loc(loc: Sequence[Any]) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        item: dict[str, Any] = {"loc": _clean_loc(err.get("loc", ())), "msg": err.get("msg", "")}
        if err.get("type"):
            item["type"] = err["type"]
        out.append(item)
    return out


# FastAPI's words for a body it could not parse (not UTF-8 ...); Starlette's multipart parser
# says what was wrong itself.
_FASTAPI_UNREADABLE_BODY = "There was an error parsing the body"

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    allowed: list[str] = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def install_error_handlers(app: FastAPI) -> None:
    async def app_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AppError)
        return problem_response(
            exc.status,
            title=exc.title,
            detail=exc.detail,
            type_slug=exc.type_slug,
            request=request,
            headers=exc.headers,
            extra=exc.extra,
        )

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = "The request body is not valid JSON."
        else:
            first = errors[0] if errors else {"loc": [], "msg": ""}
            where = ".".join(str(p) for p in first["loc"])
            detail = f"{where}: {first['msg']}" if where else str(first["msg"])
            if len(errors) > 1:
                detail += f" (and {len(errors) - 1} more)"
        return problem_response(
            422,
            title="Validation error",
            detail=detail,
            type_slug="validation-error",
            request=request,
            extra={"errors": errors},
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # The router names only the first route that matched the path; GET and POST on
            # one path are two routes, and Allow must list every method the path supports.
            allowed = _allowed_methods(request)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        if exc.status_code == 400:
            # Only reading the body raises a 400 this way (routes raise AppErrors).
            if detail in (None, _FASTAPI_UNREADABLE_BODY):
                detail = "send UTF-8 JSON, or the form the operation documents."
            return problem_response(
                400,
                title="Malformed body",
                detail=f"The request body could not be read: {detail}",
                type_slug="malformed-body",
                request=request,
                headers=headers,
            )
        return problem_response(exc.status_code, detail=detail, request=request, headers=headers)

    async def integrity_error(request: Request, exc: Exception) -> JSONResponse:
        # A unique or foreign-key race that the service's own checks could not see coming.
        logger.warning("integrity error mapped to 409", extra={"error_class": type(exc).__name__})
        return problem_response(
            409,
            title="Conflict",
            detail="The request conflicts with existing data; fetch the current state and retry.",
            type_slug="conflict",
            request=request,
        )

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        # Registered for SQLAlchemy's errors and OSError (asyncpg's refused connect arrives
        # unwrapped). Answered here, in the exception middleware, so that nothing re-raises
        # to the server, which would drop the client's keep-alive connection.
        reason = database_unavailable_reason(exc)
        if reason is None:
            return unexpected_error_response(request, exc)
        # One line per request, no traceback: an outage repeats the same one thousands of times.
        logger.warning(
            "database unavailable",
            extra={"reason": reason, "error_class": type(exc).__name__},
        )
        return database_unavailable_response(request)

    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_error_response(request, exc, inside_request_context=False)

    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(IntegrityError, integrity_error)
    app.add_exception_handler(SQLAlchemyError, database_error)
    app.add_exception_handler(OSError, database_error)
    # For errors raised in the middleware itself; ContainUnexpectedErrors answers the rest.
    app.add_exception_handler(Exception, unexpected_error)
    app.add_middleware(ContainUnexpectedErrors)


# What each error status means on any operation; an operation may say more in its own words.
PROBLEM_DESCRIPTIONS: dict[int, str] = {
    400: "The body could not be read: it is not UTF-8, or not the media type the operation takes.",
    401: "Missing, invalid or expired credentials.",
    402: "Declined by the payment gateway: `decline_code` says why.",
    403: "The caller may not do this: its role or scopes, or a password that must be changed "
    "first.",
    404: "No such resource, or it belongs to another client or tenant.",
    409: "The request conflicts with the resource's current state, or a request with the same "
    "Idempotency-Key is still in flight.",
    412: "If-Match does not match the resource's current ETag: GET it again.",
    413: "The request body is too large.",
    422: "The request is invalid: `errors` lists every reason.",
    429: "Too many attempts: retry after `Retry-After` seconds.",
    500: "An unexpected error: quote `request_id` when reporting it.",
    503: "The database or the payment gateway is unavailable: retry after `Retry-After` seconds.",
}


def problem_schema_ref(status: int) -> dict[str, str]:
    name = ValidationProblem.__name__ if status == 422 else Problem.__name__
    return {"$ref": f"#/components/schemas/{name}"}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for problem+json answers (the document adds the schemas,
    and the statuses every operation of its kind can answer: app/core/openapi)."""
    return {
        status: {
            "description": PROBLEM_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_schema_ref(status)}},
        }
        for status in statuses
    }
