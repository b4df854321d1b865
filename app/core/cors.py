"""Cross-origin callers (a single-page app on its own origin): CORS answers, preflight
included, on every path, for the origins in `BILLING_CORS_ORIGINS` and no other."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from app.core.errors import problem_response

ALLOWED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-Audit-Reason"]
EXPOSED_HEADERS = [
    "ETag",
    "Idempotent-Replayed",
    "Retry-After",
    "X-Request-Id",
    # The RateLimit header fields (IETF httpapi drafts), old and new spellings.
    "RateLimit",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]
PREFLIGHT_MAX_AGE_SECONDS = 600


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, whose refused preflight is problem+json like every other 4xx."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        headers.pop("content-type", None)
        refused = bytes(response.body).decode("utf-8", "replace")  # "Disallowed CORS origin"
        return problem_response(
            response.status_code,
            title="Cross-origin request refused",
            detail=f"{refused}: see the CORS headers this service allows.",
            type_slug="cors-refused",
            headers=headers,
        )


def install_cors(app: FastAPI, origins: list[str]) -> None:
    """Outermost, so that every answer (413s and card refusals included) carries CORS headers.
    Nothing is installed without origins: a browser then refuses cross-origin reads itself."""
    if not origins:
        return
    app.add_middleware(
        ProblemCORSMiddleware,
        allow_origins=origins,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        allow_credentials=False,  # bearer tokens, never cookies
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )
