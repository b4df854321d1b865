"""A receiver that fails, times out or answers slowly is retried on the contract's schedule
(5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then failed), on a frozen clock; an endpoint failing
for 5 days is disabled; a delivery can be sent again by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.core.clock import FrozenClock
from app.webhooks.delivery import RETRY_DELAYS
from tests.factories import assert_problem
from tests.webhooks.helpers import ENDPOINTS, Hooks, names_of, verified
from tests.webhooks.receiver import Answer, Receiver

SCHEDULE = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
]


def test_the_schedule_is_the_contracts() -> None:
    assert list(RETRY_DELAYS) == SCHEDULE


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(Answer(500), id="server-error"),
        pytest.param(Answer(404), id="not-found"),
        pytest.param(Answer(301), id="redirect-not-followed"),
        pytest.param(Answer(200, delay=1.0), id="answers-after-the-timeout"),
    ],
)
async def test_a_failing_receiver_is_retried_on_schedule_then_failed(
    hooks: Hooks, receiver: Receiver, clock: FrozenClock, failure: Answer
) -> None:
    endpoint = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    await hooks.new_client("Globex")
    receiver.answer(*[failure] * 8)
    started = clock.now

    attempts_at = []
    for delay in [timedelta(0), *SCHEDULE]:
        clock.advance(seconds=delay.total_seconds() - 1)
        # A second early: nothing is due yet.
        if delay:
            assert (await hooks.deliverer().run_once()).claimed == 0
        clock.advance(seconds=1)
        assert (await hooks.deliverer().run_once()).claimed == 1
        attempts_at.append(clock.now - started)
        [row] = await hooks.rows(endpoint["id"])
        assert row.attempt == len(attempts_at)

    assert attempts_at == [sum(SCHEDULE[:n], timedelta(0)) for n in range(8)]
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert (delivery["status"], delivery["attempt"], delivery["next_attempt_at"]) == (
        "failed",
        8,
        None,
    )
    if failure.delay:
        assert delivery["response_status"] is None
        assert "no answer within 0.5 s" in delivery["error"]
    else:
        assert delivery["response_status"] == failure.status
    # Each attempt was the same message, signed anew.
    assert len(receiver.received) == 8
    for request in receiver.received:
        # Each was signed when it was sent: verify it as its receiver did, at that time.
        clock.now = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
        verified(endpoint["secret"], request)
    clock.advance(days=30)
    assert (await hooks.deliverer().run_once()).claimed == 0


async def test_a_slow_answer_within_the_timeout_succeeds(hooks: Hooks, receiver: Receiver) -> None:
    endpoint = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    await hooks.new_client("Globex")
    receiver.answer(Answer(204, delay=0.2))

    assert (await hooks.deliverer().run_once()).outcomes == {"succeeded": 1}
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert (delivery["status"], delivery["response_status"]) == ("succeeded", 204)
    assert delivery["duration_ms"] >= 200


async def test_an_endpoint_failing_for_five_days_is_disabled(
    hooks: Hooks, receiver: Receiver, clock: FrozenClock
) -> None:
    endpoint = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    receiver.answer(*[500] * 1000)
    started = clock.now
    # A new event every 4 hours; every attempt fails.
    while clock.now - started < timedelta(days=5):
        await hooks.new_client(f"Client at {clock.now:%d %H:%M}")
        await hooks.deliverer().run_once()
        row = await hooks.endpoint_row(endpoint["id"])
        assert row.enabled, f"disabled after only {clock.now - started}"
        clock.advance(hours=4)
    await hooks.new_client("The last straw")
    await hooks.deliverer().run_once()

    shown = (await hooks.http.get(f"{ENDPOINTS}/{endpoint['id']}", headers=hooks.headers)).json()
    assert shown["enabled"] is False
    assert shown["disabled_reason"] == "every delivery failed for 5 days"
    assert shown["failing_since"] == "2026-03-02T15:00:00Z"
    events = await hooks.http.get(
        "/api/v1/events", params={"type": "webhook_endpoint.disabled"}, headers=hooks.headers
    )
    [event] = events.json()["items"]
    assert event["actor"] == {"kind": "system", "id": None}
    assert event["data"]["id"] == endpoint["id"]
    sent = len(receiver.received)
    clock.advance(days=1)
    assert (await hooks.deliverer().run_once()).claimed == 0
    assert len(receiver.received) == sent


async def test_a_success_resets_the_failing_clock(
    hooks: Hooks, receiver: Receiver, clock: FrozenClock
) -> None:
    endpoint = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    await hooks.new_client("Globex")
    receiver.answer(500)
    await hooks.deliverer().run_once()
    assert (await hooks.endpoint_row(endpoint["id"])).failing_since == clock.now
    clock.advance(seconds=5)
    await hooks.deliverer().run_once()
    assert (await hooks.endpoint_row(endpoint["id"])).failing_since is None


async def test_a_delivery_is_sent_again_by_hand(
    hooks: Hooks, receiver: Receiver, clock: FrozenClock
) -> None:
    endpoint = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    await hooks.new_client("Globex")
    await hooks.deliverer().run_once()
    [delivery] = await hooks.deliveries(endpoint["id"])
    url = f"{ENDPOINTS}/{endpoint['id']}/deliveries/{delivery['id']}/retry"

    response = await hooks.http.post(url, headers=hooks.headers)

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    assert response.json()["next_attempt_at"] == "2026-03-02T15:00:00Z"
    assert (await hooks.deliverer().run_once()).outcomes == {"succeeded": 1}
    assert names_of(receiver.received) == ["Globex", "Globex"]
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert (delivery["status"], delivery["attempt"]) == ("succeeded", 2)
    # Another endpoint's delivery, or none, is 404.
    other = await hooks.create_endpoint(receiver.url("/other"))
    missing = f"{ENDPOINTS}/{other['id']}/deliveries/{delivery['id']}/retry"
    assert_problem(await hooks.http.post(missing, headers=hooks.headers), 404)


async def test_a_failed_delivery_sent_by_hand_fails_again_after_one_attempt(
    hooks: Hooks, receiver: Receiver, clock: FrozenClock
) -> None:
    endpoint = await hooks.create_endpoint(receiver.url(), event_types=["client.created"])
    await hooks.new_client("Globex")
    receiver.answer(*[500] * 9)
    await hooks.deliverer().run_once()
    for delay in SCHEDULE:
        clock.advance(seconds=delay.total_seconds())
        await hooks.deliverer().run_once()
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert delivery["status"] == "failed"
    url = f"{ENDPOINTS}/{endpoint['id']}/deliveries/{delivery['id']}/retry"
    assert (await hooks.http.post(url, headers=hooks.headers)).status_code == 202

    assert (await hooks.deliverer().run_once()).outcomes == {"failed": 1}
    [delivery] = await hooks.deliveries(endpoint["id"])
    assert (delivery["status"], delivery["attempt"]) == ("failed", 9)
