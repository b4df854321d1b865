"""Webhook endpoints through the API: the secret shown once and kept encrypted, changes,
rotation (both signatures for 24 hours), deletion, and who may manage them."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from standardwebhooks import Webhook

from app.core.clock import FrozenClock
from app.models import WebhookEndpoint
from tests.factories import api_key_for, assert_problem, bearer, count_rows, stored_anywhere
from tests.webhooks.helpers import ENDPOINTS, Hooks, signatures, verified
from tests.webhooks.receiver import Receiver

FIELDS = {
    "id",
    "url",
    "event_types",
    "description",
    "enabled",
    "disabled_reason",
    "failing_since",
    "previous_secret_expires_at",
    "created_at",
    "updated_at",
}


async def test_the_secret_is_shown_once_and_kept_encrypted(
    hooks: Hooks, receiver: Receiver
) -> None:
    created = await hooks.create_endpoint(
        receiver.url(), event_types=["invoice.paid", "payment.failed"], description="Ledger"
    )

    assert set(created) == FIELDS | {"secret"}
    assert created["event_types"] == ["invoice.paid", "payment.failed"]
    assert (created["enabled"], created["description"]) == (True, "Ledger")
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 64
    shown = await hooks.http.get(f"{ENDPOINTS}/{created['id']}", headers=hooks.headers)
    assert set(shown.json()) == FIELDS
    listed = await hooks.http.get(ENDPOINTS, headers=hooks.headers)
    assert [e["id"] for e in listed.json()["items"]] == [created["id"]]
    for text in (shown.text, listed.text):
        assert secret not in text
    # Kept encrypted (signing needs it back), never as given, not even its base64 part.
    assert await stored_anywhere(hooks.factory, secret.removeprefix("whsec_")) == []
    row = await hooks.endpoint_row(created["id"])
    assert row.secret_encrypted.startswith("v1.")


async def test_an_endpoint_is_changed_and_deleted(hooks: Hooks, receiver: Receiver) -> None:
    created = await hooks.create_endpoint(receiver.url())
    url = f"{ENDPOINTS}/{created['id']}"

    changed = await hooks.http.patch(
        url,
        json={"url": receiver.url("/v2"), "event_types": ["client.created"], "description": None},
        headers=hooks.headers,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["url"], changed.json()["event_types"]) == (
        receiver.url("/v2"),
        ["client.created"],
    )
    everything = await hooks.http.patch(url, json={"event_types": None}, headers=hooks.headers)
    assert everything.json()["event_types"] is None
    assert_problem(
        await hooks.http.patch(url, json={"event_types": ["no.such"]}, headers=hooks.headers), 422
    )
    assert_problem(
        await hooks.http.patch(url, json={"secret": "whsec_x"}, headers=hooks.headers), 422
    )

    deleted = await hooks.http.delete(url, headers=hooks.headers)
    assert deleted.status_code == 204
    assert_problem(await hooks.http.get(url, headers=hooks.headers), 404)
    assert await count_rows(hooks.factory, WebhookEndpoint) == 0
    events = await hooks.http.get("/api/v1/events", headers=hooks.headers)
    types = [e["type"] for e in events.json()["items"]]
    assert types == [
        "webhook_endpoint.deleted",
        "webhook_endpoint.updated",
        "webhook_endpoint.updated",
        "webhook_endpoint.created",
    ]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"url": "ftp://example.com/hook"}, ["body", "url"]),
        ({"url": "not a url"}, ["body", "url"]),
        ({"url": "https://user:pw@example.com/hook"}, ["body", "url"]),
        ({"url": "https://93.184.216.34/hook", "event_types": []}, ["body", "event_types"]),
        ({"url": "https://93.184.216.34/hook", "event_types": ["invoice.nope"]}, None),
        ({"url": "https://93.184.216.34/hook", "extra": 1}, None),
    ],
)
async def test_bad_bodies_are_422(
    hooks: Hooks, body: dict[str, Any], loc: list[str] | None
) -> None:
    response = await hooks.http.post(ENDPOINTS, json=body, headers=hooks.headers)
    problem = assert_problem(response, 422)
    if loc is not None:
        assert problem["errors"][0]["loc"] == loc
    assert await count_rows(hooks.factory, WebhookEndpoint) == 0


async def test_rotation_sends_both_signatures_for_a_day(
    hooks: Hooks, receiver: Receiver, clock: FrozenClock
) -> None:
    created = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    old = created["secret"]
    rotated = await hooks.http.post(
        f"{ENDPOINTS}/{created['id']}/rotate-secret", headers=hooks.headers
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old
    assert rotated.json()["previous_secret_expires_at"] == "2026-03-03T15:00:00Z"

    await hooks.new_client("During the overlap")
    await hooks.deliverer().run_once()
    (request,) = receiver.received
    assert len(signatures(request)) == 2
    # A receiver still on the old secret and one already on the new both accept it.
    assert verified(old, request)["data"]["name"] == "During the overlap"
    assert verified(new, request)["data"]["name"] == "During the overlap"

    clock.advance(hours=24)
    await hooks.new_client("After the overlap")
    await hooks.deliverer().run_once()
    after = receiver.received[1]
    assert len(signatures(after)) == 1
    verified(new, after)
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


async def test_who_may_manage_webhooks(hooks: Hooks, receiver: Receiver) -> None:
    world = await hooks.factory.world("Other MSP")
    contact = bearer(hooks.factory.token_for(world.contact.user))
    assert_problem(
        await hooks.http.post(ENDPOINTS, json={"url": receiver.url()}, headers=contact), 403
    )
    _key, v1_key = await api_key_for(hooks.factory, world.tenant)
    assert_problem(
        await hooks.http.get(ENDPOINTS, headers=bearer(v1_key)), 403, "insufficient-scope"
    )
    _key, key = await api_key_for(hooks.factory, world.tenant, scopes=["webhooks:write"])
    made = await hooks.http.post(ENDPOINTS, json={"url": receiver.url()}, headers=bearer(key))
    assert made.status_code == 201, made.text
    # Another tenant's endpoint is 404, as a missing one.
    mine = await hooks.create_endpoint(receiver.url())
    for method in ("GET", "PATCH", "DELETE"):
        response = await hooks.http.request(
            method, f"{ENDPOINTS}/{mine['id']}", json={}, headers=bearer(key)
        )
        assert_problem(response, 404)
    assert_problem(
        await hooks.http.get(f"{ENDPOINTS}/{uuid.uuid4()}/deliveries", headers=bearer(key)), 404
    )
    listed = await hooks.http.get(ENDPOINTS, headers=bearer(key))
    assert [e["id"] for e in listed.json()["items"]] == [made.json()["id"]]


async def test_the_delivery_log_pages_newest_first(hooks: Hooks, receiver: Receiver) -> None:
    created = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    for n in range(5):
        await hooks.new_client(f"Client {n}")
    receiver.answer(200, 200, 500)
    await hooks.deliverer().run_once()

    first = await hooks.http.get(
        f"{ENDPOINTS}/{created['id']}/deliveries", params={"limit": 2}, headers=hooks.headers
    )
    page = first.json()
    rest = await hooks.deliveries(created["id"], cursor=page["next_cursor"], limit="10")
    everything = page["items"] + rest
    assert [d["status"] for d in everything] == [
        "pending",
        "pending",
        "pending",
        "succeeded",
        "succeeded",
    ]
    assert everything[2]["response_status"] == 500
    assert everything[2]["error"] == "the receiver answered 500"
    pending = await hooks.deliveries(created["id"], status="pending")
    assert len(pending) == 3
