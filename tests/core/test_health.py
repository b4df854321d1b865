"""/healthz (the process) and /readyz (the database), outside /api/v1."""

from __future__ import annotations

from httpx import AsyncClient

from tests.core.conftest import BuildApp
from tests.factories import assert_problem


async def test_healthz(client: AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz(client: AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_probes_need_no_token_and_live_outside_the_api(client: AsyncClient) -> None:
    for path in ("/healthz", "/readyz"):
        assert (await client.get(path, headers={"Authorization": "Bearer junk"})).status_code == 200
        assert_problem(await client.get(f"/api/v1{path}"), 404)


async def test_readyz_is_503_when_the_database_is_unreachable(build_app: BuildApp) -> None:
    # Port 1 on loopback: nothing listens, so the connection is refused at once.
    async with build_app(database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none") as (
        _app,
        http,
    ):
        health = await http.get("/healthz")
        assert health.status_code == 200
        response = await http.get("/readyz")
        body = assert_problem(response, 503, "not-ready")
        assert "127.0.0.1" not in response.text
        assert "nobody" not in response.text
        assert body["request_id"] == response.headers["x-request-id"]
        assert response.headers["retry-after"] == "5"  # as the document says of every 503
