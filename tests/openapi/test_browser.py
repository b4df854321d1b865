"""The API as a browser meets it, in Debian's chromium driven by Playwright (the package's
own browsers are never downloaded): Swagger UI signs in with Authorize and lists invoices,
Redoc renders the operations, and a page of another origin calls the API through CORS. Every
request the browser makes is recorded: none may leave the machine (no CDN, no fonts, no
validator)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from httpx import AsyncClient
from playwright.async_api import BrowserContext, Page, Request, async_playwright
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from app.main import create_app
from tests.conftest import make_settings
from tests.factories import PASSWORD, Factory
from tests.openapi.live import loopback_socket, origin_of, serving
from tests.payments.helpers import open_invoice

CHROMIUM = Path("/usr/bin/chromium")
# Headless Chromium on a machine without a network: no background calls home.
CHROMIUM_FLAGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000  # what a page may take on a loaded 2-core machine; a hung page fails after

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (`apt-get install chromium`; CI installs it)",
)


@dataclass
class Browser:
    context: BrowserContext
    requests: list[Request] = field(default_factory=list)

    async def page(self) -> Page:
        page = await self.context.new_page()
        page.set_default_timeout(WAIT_MS)
        return page

    def note(self, request: Request) -> None:
        self.requests.append(request)

    def urls(self) -> list[str]:
        return [r.url for r in self.requests]

    def assert_nothing_left_the_machine(self) -> None:
        assert self.requests, "the browser made no request at all"
        outside = [
            url
            for url in self.urls()
            if urlsplit(url).scheme not in ("data", "blob")
            and urlsplit(url).hostname != "127.0.0.1"
        ]
        assert not outside, outside


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
        )
        try:
            context = await chromium.new_context()
            recorded = Browser(context)
            context.on("request", recorded.note)
            yield recorded
        finally:
            await chromium.close()


@dataclass
class Billed:
    contact_email: str
    contact_token: str
    numbers: list[str]


@pytest.fixture
async def billed(factory: Factory, client: AsyncClient) -> Billed:
    """A client's contact with two open invoices."""
    world = await factory.world()
    category = await factory.category(world.tenant)
    numbers = []
    for amount in (12_500, 4_000):
        invoice = await open_invoice(client, world.staff, world.client.id, category, (1, amount))
        numbers.append(invoice["number"])
    return Billed(world.contact.user.email, world.contact.token, numbers)


async def test_swagger_ui_signs_in_with_authorize_and_lists_invoices(
    app: Any, browser: Browser, billed: Billed
) -> None:
    async with serving(app) as origin:
        page = await browser.page()
        await page.goto(f"{origin}/docs")
        await page.locator(".auth-wrapper button.authorize").click()
        password_flow = page.locator(".auth-container", has_text="OAuth2Password")
        await password_flow.locator("#oauth_username").fill(billed.contact_email)
        await password_flow.locator("#oauth_password").fill(PASSWORD)
        await password_flow.locator("button.authorize").click()
        await password_flow.locator("button.authorize", has_text="Logout").wait_for()
        await password_flow.locator("button.btn-done").click()

        operation = page.locator("#operations-invoices-listInvoices")
        await operation.locator(".opblock-summary-control").click()
        await operation.locator("button.try-out__btn").click()
        await operation.locator("button.execute").click()
        answer = operation.locator(".live-responses-table tbody tr.response")
        await answer.wait_for()
        status = await answer.locator(".response-col_status").inner_text()
        body = json.loads(await answer.locator(".highlight-code pre").first.inner_text())

    assert status.strip() == "200", body
    assert sorted(i["number"] for i in body["items"]) == sorted(billed.numbers)
    token_calls = [r for r in browser.requests if urlsplit(r.url).path == "/api/v1/auth/token"]
    assert [r.method for r in token_calls] == ["POST"]
    listing = [r for r in browser.requests if urlsplit(r.url).path == "/api/v1/invoices"]
    assert listing, browser.urls()
    assert (await listing[-1].all_headers())["authorization"].startswith("Bearer ")
    browser.assert_nothing_left_the_machine()


async def test_redoc_renders_every_operation(app: Any, browser: Browser) -> None:
    operation_ids = {
        op["operationId"]
        for item in app.openapi()["paths"].values()
        for op in item.values()
        if "operationId" in op
    }
    async with serving(app) as origin:
        page = await browser.page()
        await page.goto(f"{origin}/redoc")
        sections = page.locator("[data-section-id*='/operation/']")
        await sections.first.wait_for(state="attached")
        # An operation with two tags is listed under each.
        rendered = {
            str(await sections.nth(i).get_attribute("data-section-id")).rsplit("/", 1)[1]
            for i in range(await sections.count())
        }
        assert rendered == operation_ids
        await page.get_by_role("heading", name="List invoices").wait_for()
    browser.assert_nothing_left_the_machine()


SPA = """<!doctype html>
<html><head><meta charset="utf-8"><title>billing SPA</title></head>
<body><pre id="out">waiting</pre>
<script>
const options = new URLSearchParams(location.hash.slice(1));
fetch(options.get("api") + "/api/v1/invoices?status=open", {
  headers: {Authorization: "Bearer " + options.get("token")},
})
  .then(async (answer) => {
    const body = await answer.json();
    return {
      status: answer.status,
      requestId: answer.headers.get("X-Request-Id"),
      numbers: body.items.map((invoice) => invoice.number),
    };
  })
  .catch((error) => ({failed: String(error)}))
  .then((result) => { document.getElementById("out").textContent = JSON.stringify(result); });
</script></body></html>"""


async def spa_page(_request: Any) -> HTMLResponse:
    return HTMLResponse(SPA)


async def run_spa(browser: Browser, spa_origin: str, api_origin: str, token: str) -> Any:
    page = await browser.page()
    await page.goto(f"{spa_origin}/#api={api_origin}&token={token}")
    out = page.locator("#out")
    await out.filter(has_not_text="waiting").wait_for()
    return json.loads(await out.inner_text())


async def test_a_page_of_an_allowed_origin_calls_the_api_through_cors(
    app: Any, browser: Browser, billed: Billed, database_url: str, data_dir: Path
) -> None:
    spa = Starlette(routes=[Route("/", spa_page)])
    allowed_socket, other_socket = loopback_socket(), loopback_socket()
    allowed = origin_of(allowed_socket)
    api = create_app(make_settings(database_url, data_dir, cors_origins=allowed))
    try:
        async with (
            serving(api) as api_origin,
            serving(spa, allowed_socket),
            serving(spa, other_socket) as other,
        ):
            answer = await run_spa(browser, allowed, api_origin, billed.contact_token)
            refused = await run_spa(browser, other, api_origin, billed.contact_token)
    finally:
        await api.state.login_throttle.aclose()
        await api.state.engine.dispose()

    assert answer["status"] == 200, answer
    assert sorted(answer["numbers"]) == sorted(billed.numbers)
    assert answer["requestId"], "X-Request-Id is not exposed to the page"
    assert "failed" in refused, refused  # the browser keeps the answer from another origin
    browser.assert_nothing_left_the_machine()
