"""/docs and /redoc come with everything they load (no CDN), and a body the service cannot
read is a clear 400 problem, as the document says."""

from __future__ import annotations

import re

import pytest
from httpx import AsyncClient

from tests.factories import Factory, assert_problem

ATTRIBUTE_URL = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_only_what_the_service_serves(
    client: AsyncClient, page: str
) -> None:
    html = await client.get(page)
    assert html.status_code == 200
    urls = ATTRIBUTE_URL.findall(html.text)
    assert urls, html.text
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "googleapis" not in html.text and "cdn." not in html.text
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url


async def test_swagger_ui_asks_no_validator_and_has_its_oauth2_page(client: AsyncClient) -> None:
    html = (await client.get("/docs")).text
    assert '"validatorUrl": null' in html
    assert "url: '/openapi.json'" in html
    redirect = await client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "oauth2" in redirect.text


async def test_the_redoc_script_draws_no_logo_from_a_cdn(client: AsyncClient) -> None:
    script = await client.get("/docs/assets/redoc.standalone.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"Redoc" in script.content
    assert b"cdn.redoc.ly" not in script.content


async def test_a_json_body_that_is_not_utf8_is_a_400_problem(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    answer = await client.post(
        "/api/v1/tickets",
        content=b'{"subject": "caf\xe9", "description": "x"}',
        headers={**world.contact.headers, "Content-Type": "application/json"},
    )
    body = assert_problem(answer, 400, "malformed-body")
    assert "UTF-8" in body["detail"]


async def test_a_broken_multipart_body_is_a_400_problem(
    client: AsyncClient, factory: Factory
) -> None:
    world = await factory.world()
    answer = await client.put(
        "/api/v1/tenant/logo",
        content=b"\xff\xfe not a part",
        headers={**world.staff.headers, "Content-Type": "multipart/form-data; boundary=edge"},
    )
    body = assert_problem(answer, 400, "malformed-body")
    assert "multipart" in body["detail"]
