"""ASGI middleware: request ids and access logs, the body size limit, and the input screen
(app/core/input_screen.py: card numbers, control characters, depth, encoding) applied to the
body and the query string before anything is stored or logged."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem_type_uri
from app.core.input_screen import Refusal, screen_body, screen_headers, screen_query
from app.core.logging import request_id_var

logger = logging.getLogger("billing_portal.access")

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _problem(
    status: int,
    title: str,
    slug: str,
    detail: str,
    request_id: str,
    loc: tuple[str | int, ...] = ("body",),
) -> bytes:
    body: dict[str, Any] = {
        "type": problem_type_uri(slug),
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id,
    }
    if status == 422:
        body["errors"] = [{"loc": list(loc), "msg": detail}]
    return json.dumps(body).encode()


def _refused(refusal: Refusal, request_id: str) -> tuple[int, bytes]:
    body = _problem(
        refusal.status, refusal.title, refusal.slug, refusal.detail, request_id, refusal.loc
    )
    return refusal.status, body


class RequestContextMiddleware:
    """Request id in and out, one access-log line per request, body limit, card screening."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            refusal = await self._read_body(scope, receive, headers, request_id)
            if isinstance(refusal, tuple):
                status, body = refusal
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send_with_id({"type": "http.response.body", "body": body})
                return
            await self.app(scope, refusal, send_with_id)
        finally:
            logger.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status_holder["status"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)

    async def _read_body(
        self, scope: Scope, receive: Receive, headers: dict[str, str], request_id: str
    ) -> Receive | tuple[int, bytes]:
        """Buffer the body (bounded), screen it, and hand the app a receive that replays it."""
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return 413, self._too_large(request_id)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return receive
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return 413, self._too_large(request_id)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        refusal = screen_headers(headers) or screen_query(scope.get("query_string", b""))
        if refusal is None and body:
            refusal = screen_body(body, headers.get("content-type", ""))
        if refusal is not None:
            return _refused(refusal, request_id)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    def _too_large(self, request_id: str) -> bytes:
        detail = f"The request body is larger than {self.max_body_bytes} bytes."
        return _problem(413, "Payload too large", "payload-too-large", detail, request_id)
