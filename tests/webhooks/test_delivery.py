"""Deliveries as Standard Webhooks describes them, to a real receiver on loopback: every
signature verified with the reference library, in event order per endpoint, each event once."""

from __future__ import annotations

import json

from app.core.clock import FrozenClock
from app.models import Event
from tests.factories import count_rows
from tests.webhooks.helpers import Hooks, names_of, signatures, verified
from tests.webhooks.receiver import Receiver


async def test_an_event_arrives_signed_as_standard_webhooks_says(
    hooks: Hooks, receiver: Receiver, clock: FrozenClock
) -> None:
    endpoint = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    client = await hooks.new_client("Globex")

    report = await hooks.deliverer().run_once()

    assert report.outcomes == {"succeeded": 1}
    (request,) = receiver.received
    payload = verified(endpoint["secret"], request)
    assert set(payload) == {"id", "type", "timestamp", "data"}
    assert payload["type"] == "client.created"
    assert payload["data"] == client  # the object after the change, as the API shows it
    assert payload["timestamp"] == "2026-03-02T15:00:00Z"
    assert request.headers["webhook-id"] == payload["id"]
    assert request.headers["webhook-timestamp"] == str(int(clock.now.timestamp()))
    assert request.headers["content-type"] == "application/json"
    (signature,) = signatures(request)
    assert signature.startswith("v1,")
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["event_id"] == payload["id"]
    assert (delivery["status"], delivery["attempt"], delivery["response_status"]) == (
        "succeeded",
        1,
        200,
    )
    assert delivery["next_attempt_at"] is None
    # Sent once: another run finds nothing to do.
    assert (await hooks.deliverer().run_once()).claimed == 0
    assert len(receiver.received) == 1


async def test_a_tampered_body_or_another_secret_fails_verification(
    hooks: Hooks, receiver: Receiver
) -> None:
    """The check above can fail: the reference library refuses what was not signed so."""
    import pytest
    from standardwebhooks.webhooks import WebhookVerificationError

    endpoint = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    await hooks.new_client("Globex")
    await hooks.deliverer().run_once()
    (request,) = receiver.received
    other = await hooks.create_endpoint(receiver.url("/other"))
    with pytest.raises(WebhookVerificationError):
        verified(other["secret"], request)
    tampered = request.__class__(request.path, request.headers, request.body + b" ")
    with pytest.raises(WebhookVerificationError):
        verified(endpoint["secret"], tampered)


async def test_only_the_event_types_asked_for_are_sent(hooks: Hooks, receiver: Receiver) -> None:
    only_updates = await hooks.create_endpoint(
        receiver.url("/updates"), event_types=["client.updated"]
    )
    everything = await hooks.create_endpoint(receiver.url("/all"))
    client = await hooks.new_client("Globex")
    response = await hooks.http.patch(
        f"/api/v1/clients/{client['id']}", json={"name": "Globex 2"}, headers=hooks.headers
    )
    assert response.status_code == 200

    await hooks.deliverer().run_once()

    by_path = [(r.path, json.loads(r.body)["type"]) for r in receiver.received]
    # Every type recorded since it was made (its own creation too) to one; only what it
    # asked for to the other.
    assert sorted(by_path) == [
        ("/all", "client.created"),
        ("/all", "client.updated"),
        ("/all", "webhook_endpoint.created"),
        ("/updates", "client.updated"),
    ]
    for request in receiver.received:
        secret = everything["secret"] if request.path == "/all" else only_updates["secret"]
        verified(secret, request)


async def test_each_endpoint_gets_its_events_in_order(hooks: Hooks, receiver: Receiver) -> None:
    await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    names = [f"Client {n:02d}" for n in range(12)]
    for name in names:
        await hooks.new_client(name)

    await hooks.deliverer(webhooks_concurrency=4).run_once()

    assert names_of(receiver.received) == names


async def test_a_failing_delivery_holds_the_later_ones_until_it_succeeds(
    hooks: Hooks, receiver: Receiver, clock: FrozenClock
) -> None:
    endpoint = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    for name in ("First", "Second", "Third"):
        await hooks.new_client(name)
    receiver.answer(500)

    report = await hooks.deliverer().run_once()

    assert report.outcomes == {"retrying": 1}
    assert names_of(receiver.received) == ["First"]
    clock.advance(seconds=5)
    await hooks.deliverer().run_once()
    assert names_of(receiver.received) == ["First", "First", "Second", "Third"]
    rows = await hooks.rows(endpoint["id"])
    assert [(r.status, r.attempt) for r in rows] == [
        ("succeeded", 2),
        ("succeeded", 1),
        ("succeeded", 1),
    ]


async def test_events_made_before_an_endpoint_existed_are_not_sent_to_it(
    hooks: Hooks, receiver: Receiver, clock: FrozenClock
) -> None:
    await hooks.new_client("Before")
    await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    await hooks.new_client("After")

    await hooks.deliverer().run_once()

    assert names_of(receiver.received) == ["After"]


async def test_a_disabled_endpoint_gets_nothing_until_enabled_again(
    hooks: Hooks, receiver: Receiver
) -> None:
    endpoint = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    url = f"/api/v1/webhook-endpoints/{endpoint['id']}"
    await hooks.new_client("Sent")
    await hooks.deliverer().run_once()
    response = await hooks.http.patch(url, json={"enabled": False}, headers=hooks.headers)
    assert response.json()["enabled"] is False
    await hooks.new_client("While off")

    await hooks.deliverer().run_once()
    assert names_of(receiver.received) == ["Sent"]
    assert await count_rows(hooks.factory, Event, Event.type == "client.created") == 2

    await hooks.http.patch(url, json={"enabled": True}, headers=hooks.headers)
    await hooks.new_client("Back on")
    await hooks.deliverer().run_once()
    # Events while it was off were never handed to it; new ones are.
    assert names_of(receiver.received) == ["Sent", "Back on"]
