"""The guard against server-side request forgery: https only and public addresses only, when
an endpoint is made or changed and again before every attempt."""

from __future__ import annotations

import ipaddress

import pytest

from app.core.config import Settings
from app.models import WebhookEndpoint
from app.webhooks.targets import TargetRefused, is_public, resolve_target
from tests.factories import assert_problem, count_rows
from tests.webhooks.helpers import ENDPOINTS, Hooks
from tests.webhooks.receiver import Receiver

REFUSED = [
    "http://93.184.216.34/hook",  # not https
    "https://127.0.0.1/hook",
    "https://127.1.2.3:8443/hook",
    "https://localhost/hook",  # resolves to loopback
    "https://10.1.2.3/hook",
    "https://172.16.0.1/hook",
    "https://192.168.1.10/hook",
    "https://169.254.169.254/latest/meta-data",  # cloud metadata: link-local
    "https://100.64.0.1/hook",  # carrier-grade NAT
    "https://0.0.0.0/hook",
    "https://[::1]/hook",
    "https://[fe80::1]/hook",
    "https://[fd00::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",  # loopback, dressed as IPv6
    "https://224.0.0.1/hook",
]


@pytest.fixture
def strict(webhook_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Production's rule: no private targets."""
    monkeypatch.setattr(webhook_settings, "webhooks_allow_private_urls", False)
    return webhook_settings


@pytest.mark.parametrize("url", REFUSED)
async def test_private_and_plain_http_targets_are_refused(
    hooks: Hooks, strict: Settings, url: str
) -> None:
    response = await hooks.http.post(ENDPOINTS, json={"url": url}, headers=hooks.headers)
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["body", "url"]
    assert await count_rows(hooks.factory, WebhookEndpoint) == 0


async def test_a_public_address_is_accepted(hooks: Hooks, strict: Settings) -> None:
    # Created only: nothing is sent in this test (no traffic leaves the machine).
    response = await hooks.http.post(
        ENDPOINTS, json={"url": "https://93.184.216.34/hook"}, headers=hooks.headers
    )
    assert response.status_code == 201, response.text


async def test_a_url_changed_to_a_private_target_is_refused(hooks: Hooks, strict: Settings) -> None:
    created = await hooks.create_endpoint("https://93.184.216.34/hook")
    response = await hooks.http.patch(
        f"{ENDPOINTS}/{created['id']}",
        json={"url": "https://169.254.169.254/"},
        headers=hooks.headers,
    )
    assert_problem(response, 422)
    assert (await hooks.endpoint_row(created["id"])).url == "https://93.184.216.34/hook"


async def test_the_target_is_checked_again_at_delivery_time(
    hooks: Hooks, receiver: Receiver, webhook_settings: Settings
) -> None:
    """Made while private targets were allowed (or a name that later resolves privately):
    the deliverer refuses to send it, and says why."""
    created = await hooks.create_endpoint(
        receiver.url(host="localhost"), event_types=["client.created"]
    )
    await hooks.new_client("Globex")

    report = await hooks.deliverer(webhooks_allow_private_urls=False).run_once()

    assert report.outcomes == {"retrying": 1}
    assert receiver.received == []
    [delivery] = await hooks.deliveries(created["id"])
    assert delivery["response_status"] is None
    assert "Webhook URLs must use https://" in delivery["error"]


async def test_a_name_resolving_to_loopback_is_refused_at_delivery() -> None:
    with pytest.raises(TargetRefused, match="private, loopback or link-local"):
        await resolve_target("https://localhost:1/hook", allow_private=False)


async def test_a_checked_target_is_pinned_to_the_address_checked() -> None:
    target = await resolve_target("https://93.184.216.34:8443/a?b=c", allow_private=False)
    assert target.url == "https://93.184.216.34:8443/a?b=c"
    assert target.headers == {"Host": "93.184.216.34:8443"}
    assert target.extensions == {"sni_hostname": "93.184.216.34"}


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("169.254.1.1", False),
        ("192.0.2.1", False),  # documentation range
        ("ff02::1", False),
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::5db8:d822", True),  # NAT64 of 93.184.216.34
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
