"""Idempotency keys, after Stripe: the same key with the same body replays the first
response (same status, same body); with a different body it is 422; while the first
request is still running it is 409.

Records are scoped to the caller, kept at least `idempotency_ttl_seconds` (24 h), and
written in transactions of their own, committed before the operation starts, so a second
request sees the first one in flight. Responses with a status below 500 are stored
(declines included); a 5xx, a crash or a "retry later" answer (`RetryLater`) releases the
key instead, so the client may retry the same request at once — safe, because the money
operations themselves resume by the same key rather than start anew. A released key still
remembers its request: another request with it remains a 422.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import transaction
from app.core.errors import AppError, Conflict, Unprocessable, problem_response
from app.core.idempotency.repository import IdempotencyRepository
from app.models.billing import IdempotencyRecord

_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
# A request that has been "in flight" this long died with its process: let a retry in.
IN_FLIGHT_LOCK = timedelta(minutes=2)


class IdempotencyKeyReused(Unprocessable):
    type_slug = "idempotency-key-reused"
    title = "Idempotency key reused"

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was already used with a different request. "
            "Use a new key for a new request.",
            loc=("header", "Idempotency-Key"),
        )


class RetryLater:
    """Mixed into an error that means "not now" (another payment holds the invoice): it is
    not kept as the key's answer, so the same request with the same key can be retried."""


class IdempotentRequestInFlight(Conflict):
    type_slug = "idempotent-request-in-flight"
    title = "Request in progress"
    default_detail = (
        "A request with this Idempotency-Key is still being processed. Retry in a moment."
    )


async def idempotency_key_header(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes the request safe to retry: the same key replays the first "
            "response. Up to 255 printable ASCII characters; kept 24 hours.",
            json_schema_extra={"maxLength": 255},
        ),
    ] = None,
) -> str | None:
    if idempotency_key is not None and not _KEY_PATTERN.match(idempotency_key):
        raise Unprocessable(
            "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces.",
            loc=("header", "Idempotency-Key"),
        )
    return idempotency_key


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key_header)]


@dataclass(frozen=True, slots=True)
class Outcome:
    """An operation's result when its status is not the route's usual one."""

    status: int
    body: Any


@dataclass(frozen=True, slots=True)
class _Started:
    record_id: Any


@dataclass(frozen=True, slots=True)
class _Replay:
    status: int
    body: Any


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except (ValueError, UnicodeDecodeError):
        canonical = body.decode("latin-1")
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.ttl = timedelta(seconds=settings.idempotency_ttl_seconds)

    async def begin(self, actor: str, key: str, fingerprint: str) -> _Started | _Replay:
        for _ in range(3):
            try:
                return await self._begin_once(actor, key, fingerprint)
            except IntegrityError:
                continue  # another request with this key got in first: look again
        raise IdempotentRequestInFlight()

    async def _begin_once(self, actor: str, key: str, fingerprint: str) -> _Started | _Replay:
        now = utcnow()
        async with transaction(self.sessionmaker) as session:
            records = IdempotencyRepository(session)
            # The common case, a key not seen before, in one statement.
            new_id = await records.add_new(
                actor,
                key,
                fingerprint=fingerprint,
                locked_until=now + IN_FLIGHT_LOCK,
                expires_at=now + self.ttl,
            )
            if new_id is not None:
                return _Started(new_id)
            found = await records.locked(actor, key)
            if found is not None and found.expires_at <= now:
                await records.remove(found)
                found = None
            if found is not None:
                if found.request_fingerprint != fingerprint:
                    raise IdempotencyKeyReused()
                if found.state == "completed":
                    assert found.response_status is not None
                    return _Replay(found.response_status, found.response_body)
                if found.locked_until > now:
                    raise IdempotentRequestInFlight()
                # The first attempt died: this one takes over.
                found.locked_until = now + IN_FLIGHT_LOCK
                return _Started(found.id)
            record = await records.add(
                IdempotencyRecord(
                    actor=actor,
                    key=key,
                    request_fingerprint=fingerprint,
                    locked_until=now + IN_FLIGHT_LOCK,
                    expires_at=now + self.ttl,
                )
            )
            return _Started(record.id)

    async def take_over(self, actor: str, key: str, fingerprint: str) -> _Started:
        """The record of a request still in flight, for an answer found elsewhere."""
        async with transaction(self.sessionmaker) as session:
            found = await IdempotencyRepository(session).locked(actor, key)
            if found is None or found.request_fingerprint != fingerprint:
                raise IdempotentRequestInFlight()
            return _Started(found.id)

    async def complete(self, record_id: Any, status: int, body: Any) -> None:
        async with transaction(self.sessionmaker) as session:
            await IdempotencyRepository(session).complete(record_id, status, body)

    async def release(self, record_id: Any) -> None:
        """No answer to keep: unlock the key for a retry, still bound to its request."""
        async with transaction(self.sessionmaker) as session:
            await IdempotencyRepository(session).unlock(record_id, utcnow())

    async def purge_expired(self) -> int:
        async with transaction(self.sessionmaker) as session:
            return await IdempotencyRepository(session).purge_expired(utcnow())


class IdempotentRequest:
    """The one way a route runs an operation that must happen at most once per
    `Idempotency-Key` (money moving, billable objects created).

    Without a key the operation simply runs. With one, the first request runs it and its answer
    is kept; a retry with the same body replays that answer (`Idempotent-Replayed: true`), with
    another body it is 422, and while the first still runs it is 409. The operation returns the
    JSON body of the route's usual status, or an `Outcome` for another status; an `AppError` it
    raises is kept as the answer too, unless it is a 5xx or a `RetryLater`.

    The operation runs its own transactions and commits them before it returns (never the
    request's session, which commits only after the answer is kept): a kept answer always
    stands for a committed change.
    """

    def __init__(self, request: Request, key: str | None) -> None:
        self.request = request
        self.key = key

    def request_key(self, actor: str) -> str | None:
        """The key as the money path stores it, scoped to the caller: a retry after a lost
        response finds the same payment instead of making another."""
        return f"{actor}:{self.key}" if self.key else None

    async def respond(
        self,
        actor: str,
        status_code: int,
        operation: Callable[[], Awaitable[Any]],
        *,
        settled: Callable[[], Awaitable[Any]] | None = None,
    ) -> Response:
        """`settled`, for operations that leave a record of their own (a payment found by its
        request key): what that record says now, or None while it is unsettled. A retry that
        meets the first request still "in flight" (its process may have died after the charge)
        then learns the outcome as soon as it is recorded, instead of waiting out the lock."""
        if self.key is None:
            return _json(await operation(), status_code)
        request = self.request
        store: IdempotencyStore = request.app.state.idempotency
        fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
        try:
            started = await store.begin(actor, self.key, fingerprint)
        except IdempotentRequestInFlight:
            if settled is None:
                raise
            return await self._answer_settled(store, actor, fingerprint, status_code, settled)
        if isinstance(started, _Replay):
            replay = _render(started.status, started.body)
            replay.headers["Idempotent-Replayed"] = "true"
            return replay
        return await self._run(store, started, status_code, operation)

    async def _answer_settled(
        self,
        store: IdempotencyStore,
        actor: str,
        fingerprint: str,
        status_code: int,
        settled: Callable[[], Awaitable[Any]],
    ) -> Response:
        async def known() -> Any:
            answer = await settled()
            if answer is None:
                raise IdempotentRequestInFlight()
            return answer

        taken = await store.take_over(actor, str(self.key), fingerprint)
        return await self._run(store, taken, status_code, known)

    async def _run(
        self,
        store: IdempotencyStore,
        started: _Started,
        status_code: int,
        operation: Callable[[], Awaitable[Any]],
    ) -> Response:
        request = self.request
        try:
            result = await operation()
        except IdempotentRequestInFlight:
            raise  # the first request still owns the key: leave its lock as it is
        except AppError as exc:
            if exc.status >= 500 or isinstance(exc, RetryLater):
                await store.release(started.record_id)
                raise
            problem = problem_response(
                exc.status,
                title=exc.title,
                detail=exc.detail,
                type_slug=exc.type_slug,
                request=request,
                extra=exc.extra,
            )
            await store.complete(started.record_id, exc.status, json.loads(bytes(problem.body)))
            problem.headers.update(exc.headers)
            return problem
        except BaseException:
            await store.release(started.record_id)
            raise
        if isinstance(result, Outcome):
            status_code, result = result.status, result.body
        body = jsonable_encoder(result)
        await store.complete(started.record_id, status_code, body)
        return JSONResponse(body, status_code=status_code)


async def idempotent_request(request: Request, key: IdempotencyKeyDep) -> IdempotentRequest:
    return IdempotentRequest(request, key)


IdempotentDep = Annotated[IdempotentRequest, Depends(idempotent_request)]


def _json(result: Any, status_code: int) -> Response:
    if isinstance(result, Outcome):
        return JSONResponse(jsonable_encoder(result.body), status_code=result.status)
    return JSONResponse(jsonable_encoder(result), status_code=status_code)


def _render(status: int, body: Any) -> Response:
    if status >= 400:
        return JSONResponse(body, status_code=status, media_type="application/problem+json")
    return JSONResponse(body, status_code=status)
