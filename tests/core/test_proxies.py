"""The client's address: X-Forwarded-For believed only from BILLING_TRUSTED_PROXIES."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError

from app import cli
from app.core.proxies import client_address, parse_networks
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import PASSWORD, Factory, assert_problem

PROXIES = parse_networks("10.0.0.0/8, 2001:db8::/32")


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a proxy: the header is ignored
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
        # Whatever the client wrote itself sits left of what our proxy appended.
        ("10.0.0.5", "1.2.3.4, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "1.2.3.4, 198.51.100.1, 10.1.1.1", "198.51.100.1"),
        ("10.0.0.5", "not-an-ip, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "198.51.100.1, garbage", "10.0.0.5"),
        ("10.0.0.5", "10.2.2.2", "10.2.2.2"),  # only proxies: the farthest one
        ("2001:db8::1", "2001:db8::2, 2a00::7", "2a00::7"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str, header: str | None, expected: str
) -> None:
    assert client_address(peer, header, PROXIES) == expected


def test_the_setting_takes_cidrs_and_refuses_anything_else(tmp_path: Path) -> None:
    settings = make_settings(
        "sqlite+aiosqlite://", tmp_path, trusted_proxies=" 10.0.0.0/8,192.0.2.1"
    )
    assert settings.trusted_proxies == "10.0.0.0/8,192.0.2.1/32"
    with pytest.raises(ValidationError, match="CIDR"):
        make_settings("sqlite+aiosqlite://", tmp_path, trusted_proxies="10.0.0.0/8,nonsense")


@pytest.fixture
async def behind_proxy(
    app: Any, database_url: str, data_dir: Path
) -> AsyncIterator[dict[str, AsyncClient]]:
    """An app trusting 10.0.0.0/8, with a client as the proxy (10.0.0.2) and as a stranger."""
    proxied = create_app(make_settings(database_url, data_dir, trusted_proxies="10.0.0.0/8"))
    clients = {
        name: AsyncClient(
            transport=ASGITransport(app=proxied, client=(peer, 5000)), base_url="http://testserver"
        )
        for name, peer in (("proxy", "10.0.0.2"), ("stranger", "203.0.113.50"))
    }
    yield clients
    for http in clients.values():
        await http.aclose()
    await proxied.state.login_throttle.aclose()
    await proxied.state.engine.dispose()


async def _sign_in(http: AsyncClient, email: str, password: str, forwarded: str) -> int:
    response = await http.post(
        "/api/v1/auth/token",
        data={"username": email, "password": password},
        headers={"X-Forwarded-For": forwarded},
    )
    return response.status_code


async def test_throttling_sees_the_address_the_proxy_reports(
    behind_proxy: dict[str, AsyncClient], factory: Factory
) -> None:
    world = await factory.world()
    email, proxy = world.staff.user.email, behind_proxy["proxy"]
    for _ in range(5):
        assert await _sign_in(proxy, email, "wrong password", "198.51.100.1") == 401
    # Locked for that client address, not for another one behind the same proxy ...
    assert await _sign_in(proxy, email, PASSWORD, "198.51.100.1") == 429
    assert await _sign_in(proxy, email, PASSWORD, "198.51.100.2") == 200
    # ... and a client cannot slip out by writing its own header before the proxy's.
    assert await _sign_in(proxy, email, PASSWORD, "9.9.9.9, 198.51.100.1") == 429


async def test_a_stranger_cannot_choose_its_address(
    behind_proxy: dict[str, AsyncClient], factory: Factory
) -> None:
    world = await factory.world()
    email, stranger = world.staff.user.email, behind_proxy["stranger"]
    for n in range(5):
        assert await _sign_in(stranger, email, "wrong password", f"198.51.100.{n}") == 401
    response = await stranger.post(
        "/api/v1/auth/token",
        data={"username": email, "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.77"},
    )
    assert_problem(response, 429, "sign-in-throttled")


def test_serve_leaves_forwarded_headers_to_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    args = argparse.Namespace(host="127.0.0.1", port=8000, workers=1, migrate=False)
    assert cli._cmd_serve(args) == 0
    # uvicorn's own handling would take the header from any local peer, over our setting.
    assert seen["proxy_headers"] is False
