"""One webhook attempt over HTTP: a signed POST, answered with a 2xx in time or not."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from app.webhooks.targets import TargetRefused, resolve_target

USER_AGENT = "billing-portal-webhooks/1"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    response_status: int | None
    duration_ms: int
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300


async def post_signed(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,  # noqa: ASYNC109 - the receiver's time limit
    allow_private: bool,
) -> AttemptResult:
    """POST `body` to `url`; the whole exchange (connect, send, the answer's status line and
    headers) must finish within `timeout` seconds. Redirects are not followed (a 3xx fails)."""
    started = time.perf_counter()

    def result(status: int | None, error: str | None = None) -> AttemptResult:
        return AttemptResult(status, round((time.perf_counter() - started) * 1000), error)

    try:
        target = await resolve_target(url, allow_private=allow_private)
    except TargetRefused as exc:
        return result(None, str(exc)[:300])
    request_headers = {
        **headers,
        **target.headers,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    try:
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False
        ) as client:
            async with asyncio.timeout(timeout):
                request = client.build_request(
                    "POST",
                    target.url,
                    content=body,
                    headers=request_headers,
                    extensions=target.extensions,
                )
                response = await client.send(request, stream=True)
                await response.aclose()  # the answer's body is not needed
    except (TimeoutError, httpx.TimeoutException):
        return result(None, f"no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return result(None, f"could not deliver: {type(exc).__name__}: {exc}"[:300])
    return result(response.status_code)
