"""Cross-origin callers: CORS answers for the origins of BILLING_CORS_ORIGINS only, preflight
included, with the contract's allowed and exposed headers (a real browser runs the same in
tests/openapi/test_browser.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.config import Settings
from tests.core.conftest import BuildApp
from tests.factories import assert_problem

SPA = "https://portal.example.com"
DEV_SPA = "http://localhost:5173"
ORIGINS = f"{SPA}, {DEV_SPA}"
ALLOWED_HEADERS = {"authorization", "content-type", "idempotency-key", "if-match", "x-audit-reason"}
EXPOSED_HEADERS = {
    "etag",
    "idempotent-replayed",
    "retry-after",
    "x-request-id",
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
}


def listed(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",")}


def preflight(origin: str, method: str = "POST", headers: str = "authorization") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


@pytest.mark.parametrize("path", ["/api/v1/invoices", "/api/v1/invoices/x/pay", "/healthz"])
async def test_a_preflight_from_an_allowed_origin_gets_the_contracts_answer(
    build_app: BuildApp, path: str
) -> None:
    async with build_app(cors_origins=ORIGINS) as (_app, http):
        asked = "authorization, content-type, idempotency-key, if-match, x-audit-reason"
        answer = await http.options(path, headers=preflight(DEV_SPA, "PATCH", asked))
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == DEV_SPA
    assert listed(answer.headers["access-control-allow-headers"]) >= ALLOWED_HEADERS
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= set(
        answer.headers["access-control-allow-methods"].replace(" ", "").split(",")
    )
    assert int(answer.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in answer.headers  # bearer tokens only


async def test_answers_to_an_allowed_origin_expose_the_contracts_headers(
    build_app: BuildApp,
) -> None:
    async with build_app(cors_origins=ORIGINS, max_body_bytes=1024) as (_app, http):
        ok = await http.get("/healthz", headers={"Origin": SPA})
        refused = await http.get("/api/v1/invoices", headers={"Origin": SPA})
        too_large = await http.post(
            "/api/v1/auth/refresh",
            content=b"{" + b" " * 2048 + b"}",
            headers={"Origin": SPA, "Content-Type": "application/json"},
        )
    for answer in (ok, refused, too_large):
        assert answer.headers["access-control-allow-origin"] == SPA
        assert listed(answer.headers["access-control-expose-headers"]) == EXPOSED_HEADERS
        assert "origin" in listed(answer.headers["vary"])
    assert ok.status_code == 200
    assert_problem(refused, 401)
    assert_problem(too_large, 413)  # refused by the body limit, outside the routes


async def test_another_origin_gets_no_cors_answer(build_app: BuildApp) -> None:
    async with build_app(cors_origins=ORIGINS) as (_app, http):
        simple = await http.get("/healthz", headers={"Origin": "https://evil.example"})
        asked = await http.options("/api/v1/invoices", headers=preflight("https://evil.example"))
        bad_header = await http.options(
            "/api/v1/invoices", headers=preflight(SPA, headers="x-something-else")
        )
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    body = assert_problem(asked, 400, "cors-refused")
    assert "origin" in body["detail"]
    assert "access-control-allow-origin" not in asked.headers
    assert "headers" in assert_problem(bad_header, 400, "cors-refused")["detail"]


async def test_without_origins_there_is_no_cors_at_all(build_app: BuildApp) -> None:
    async with build_app() as (_app, http):
        simple = await http.get("/healthz", headers={"Origin": SPA})
        asked = await http.options("/api/v1/invoices", headers=preflight(SPA, "GET"))
    assert "access-control-allow-origin" not in simple.headers
    assert_problem(asked, 405)
    assert "access-control-allow-origin" not in asked.headers


def test_origins_are_read_as_browsers_send_them() -> None:
    settings = Settings(
        cors_origins=" https://Portal.Example.com/ ,http://localhost:5173,https://a.example:443,"
    )
    assert settings.cors_origin_list == [
        "https://portal.example.com",
        "http://localhost:5173",
        "https://a.example",
    ]
    assert Settings().cors_origin_list == []


@pytest.mark.parametrize(
    "value",
    ["*", "portal.example.com", "https://portal.example.com/app", "ftp://x.example", "https://"],
)
def test_an_origin_that_is_not_one_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValidationError, match="cors_origins"):
        Settings(cors_origins=value)
