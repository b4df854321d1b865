"""Scheduled payments through the API: create, list, get with an ETag, change under
If-Match, cancel; the statuses and rules of the contract; who may see and touch what."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.gateways.fake import FakeGateway
from app.models import ScheduledPayment
from app.scheduled_payments.rules import start_of_day
from app.scheduler.runner import PaymentRunner
from tests.factories import Factory, assert_problem, count_rows
from tests.scheduling.helpers import (
    INVOICES,
    NO_SUCH_ID,
    SCHEDULED,
    TODAY,
    Scene,
    build_scene,
    event_types,
    scheduled_row,
    sibling,
)

LATER = TODAY + timedelta(days=5)


@pytest.fixture
async def invoice(scene: Scene) -> dict[str, Any]:
    """An open invoice of 10 000."""
    return await scene.invoice((scene.hosting, 6_000), (scene.helpdesk, 4_000), due=LATER)


# -- create ---------------------------------------------------------------------------------


async def test_create_schedules_a_manual_payment(
    scene: Scene, invoice: dict[str, Any], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    response = await scene.schedule(invoice["id"], 2_500, LATER)

    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == '"v1"'
    body = response.json()
    assert body["invoice_id"] == invoice["id"]
    assert body["client_id"] == str(scene.client.id)
    assert body["payment_method_id"] == scene.card["id"]
    assert (body["amount"], body["currency"]) == (2_500, "USD")
    assert body["scheduled_for"] == LATER.isoformat()
    assert (body["status"], body["origin"], body["attempts"]) == ("scheduled", "manual", 0)
    assert body["failure_reason"] is None
    assert body["cancel_reason"] is None
    uuid.UUID(body["id"])
    row = await scheduled_row(sessionmaker, body["id"])
    assert row.next_attempt_at == start_of_day(LATER, "UTC")
    assert await event_types(sessionmaker, row.id) == {"scheduled_payment.created": 1}
    got = await scene.http.get(f"{SCHEDULED}/{body['id']}", headers=scene.contact)
    assert got.json() == body
    assert got.headers["ETag"] == response.headers["ETag"]


async def test_today_and_the_whole_balance_are_allowed(
    scene: Scene, invoice: dict[str, Any]
) -> None:
    response = await scene.schedule(invoice["id"], 10_000, TODAY)
    assert response.status_code == 201, response.text


async def test_today_is_the_tenants_today(factory: Factory, client: Any) -> None:
    # 03:00 UTC on 2 March: still 1 March in New York, so 1 March is not in the past there.
    with FrozenClock(datetime(2026, 3, 2, 3, 0, tzinfo=UTC)):
        scene = await build_scene(factory, client, timezone="America/New_York")
        invoice = await scene.invoice((scene.hosting, 1_000), due=date(2026, 3, 20))

        ok = await scene.schedule(invoice["id"], 1_000, date(2026, 3, 1))
        past = await scene.schedule(invoice["id"], 1_000, date(2026, 2, 28))

    assert ok.status_code == 201, ok.text
    assert ok.json()["next_attempt_at"].startswith("2026-03-01T05:00:00")
    body = assert_problem(past, 422)
    assert ["body", "scheduled_for"] in [e["loc"] for e in body["errors"]]


@pytest.mark.parametrize(
    ("amount", "day", "loc"),
    [
        (1_000, TODAY - timedelta(days=1), ["body", "scheduled_for"]),
        (0, LATER, ["body", "amount"]),
        (-5, LATER, ["body", "amount"]),
        (10_001, LATER, ["body", "amount"]),
    ],
    ids=["yesterday", "zero", "negative", "above-balance"],
)
async def test_create_refuses_bad_dates_and_amounts(
    scene: Scene,
    invoice: dict[str, Any],
    amount: int,
    day: date,
    loc: list[str],
) -> None:
    response = await scene.schedule(invoice["id"], amount, day)

    body = assert_problem(response, 422)
    assert loc in [e["loc"] for e in body["errors"]], body
    assert await count_rows(scene.factory, ScheduledPayment) == 0


async def test_the_balance_is_what_is_left_after_payments(
    scene: Scene, invoice: dict[str, Any]
) -> None:
    assert (await scene.pay_now(invoice["id"], 4_000)).status_code == 201

    over = await scene.schedule(invoice["id"], 6_001, LATER)
    assert_problem(over, 422)
    exact = await scene.schedule(invoice["id"], 6_000, LATER)
    assert exact.status_code == 201, exact.text


async def test_create_refuses_invoices_and_methods_that_are_not_the_clients(
    scene: Scene, invoice: dict[str, Any]
) -> None:
    other = await sibling(scene)
    theirs = await other.invoice((other.hosting, 1_000), due=LATER)
    draft = await scene.draft((scene.hosting, 1_000), due=LATER)
    paid = await scene.invoice((scene.hosting, 1_000), due=LATER)
    assert (await scene.pay_now(paid["id"])).status_code == 201
    voided = await scene.invoice((scene.hosting, 1_000), due=LATER)
    void = await scene.http.post(f"{INVOICES}/{voided['id']}/void", headers=scene.staff)
    assert void.status_code == 200, void.text

    for invoice_id in (theirs["id"], draft["id"], paid["id"], voided["id"], NO_SUCH_ID):
        response = await scene.schedule(invoice_id, 500, LATER)
        body = assert_problem(response, 422)
        assert ["body", "invoice_id"] in [e["loc"] for e in body["errors"]], invoice_id

    for method_id in (other.card["id"], NO_SUCH_ID):
        response = await scene.schedule(invoice["id"], 500, LATER, method_id=method_id)
        body = assert_problem(response, 422)
        assert ["body", "payment_method_id"] in [e["loc"] for e in body["errors"]]

    extra = await scene.http.post(
        SCHEDULED,
        json={
            "invoice_id": invoice["id"],
            "payment_method_id": scene.card["id"],
            "amount": 500,
            "scheduled_for": LATER.isoformat(),
            "status": "succeeded",
        },
        headers=scene.contact,
    )
    assert_problem(extra, 422)
    assert await count_rows(scene.factory, ScheduledPayment) == 0


async def test_the_same_idempotency_key_replays_the_first_response(
    scene: Scene, invoice: dict[str, Any]
) -> None:
    first = await scene.schedule(invoice["id"], 1_000, LATER, key="sched-1")
    again = await scene.schedule(invoice["id"], 1_000, LATER, key="sched-1")
    different = await scene.schedule(invoice["id"], 2_000, LATER, key="sched-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert_problem(different, 422)
    assert await count_rows(scene.factory, ScheduledPayment) == 1
    other_key = await scene.schedule(invoice["id"], 1_000, LATER, key="sched-2")
    assert other_key.status_code == 201
    assert await count_rows(scene.factory, ScheduledPayment) == 2


async def test_staff_create_change_and_cancel_for_the_client_they_name(
    scene: Scene, invoice: dict[str, Any], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    mine = await scene.scheduled(invoice["id"], 1_000, LATER)
    body = {
        "invoice_id": invoice["id"],
        "payment_method_id": scene.card["id"],
        "amount": 1_000,
        "scheduled_for": LATER.isoformat(),
    }

    # Staff name the client; without it the request is refused, as it is with another's.
    unnamed = assert_problem(await scene.http.post(SCHEDULED, json=body, headers=scene.staff), 422)
    assert ["body", "client_id"] in [e["loc"] for e in unnamed["errors"]]
    made = await scene.http.post(
        SCHEDULED, json={**body, "client_id": str(scene.client.id)}, headers=scene.staff
    )
    assert made.status_code == 201, made.text
    assert made.json()["client_id"] == str(scene.client.id)
    patch = await scene.http.patch(
        f"{SCHEDULED}/{mine['id']}", json={"amount": 5}, headers=scene.staff
    )
    assert patch.status_code == 200, patch.text
    assert patch.json()["amount"] == 5
    cancel = await scene.http.post(f"{SCHEDULED}/{mine['id']}/cancel", headers=scene.staff)
    assert (cancel.status_code, cancel.json()["status"]) == (200, "canceled")
    # The change is the staff member's: the event names them as the actor when events do.
    assert (await scheduled_row(sessionmaker, mine["id"])).cancel_reason == "canceled by the client"
    assert_problem(await scene.http.get(SCHEDULED), 401)


# -- list and get ---------------------------------------------------------------------------


async def test_list_filters_by_status_and_invoice(
    scene: Scene, invoice: dict[str, Any], clock: FrozenClock
) -> None:
    second = await scene.invoice((scene.hosting, 5_000), due=LATER)
    a = await scene.scheduled(invoice["id"], 1_000, LATER)
    clock.advance(seconds=1)
    b = await scene.scheduled(invoice["id"], 2_000, LATER)
    clock.advance(seconds=1)
    c = await scene.scheduled(second["id"], 3_000, LATER)
    newest_first = [i["id"] for i in await scene.scheduled_list()]
    assert newest_first == [c["id"], b["id"], a["id"]]
    cancel = await scene.http.post(f"{SCHEDULED}/{b['id']}/cancel", headers=scene.contact)
    assert cancel.status_code == 200

    def ids(items: list[dict[str, Any]]) -> set[str]:
        return {i["id"] for i in items}

    assert ids(await scene.scheduled_list()) == {a["id"], b["id"], c["id"]}
    assert ids(await scene.scheduled_list(status="scheduled")) == {a["id"], c["id"]}
    assert ids(await scene.scheduled_list(status="canceled")) == {b["id"]}
    assert ids(await scene.scheduled_list(status="succeeded")) == set()
    assert ids(await scene.scheduled_list(invoice_id=invoice["id"])) == {a["id"], b["id"]}
    assert ids(await scene.scheduled_list(invoice_id=second["id"], status="scheduled")) == {c["id"]}
    bad = await scene.http.get(SCHEDULED, params={"status": "lost"}, headers=scene.contact)
    assert_problem(bad, 422)


async def test_list_pages_with_a_cursor(scene: Scene, invoice: dict[str, Any]) -> None:
    made = {(await scene.scheduled(invoice["id"], 100 + i, LATER))["id"] for i in range(5)}

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await scene.http.get(SCHEDULED, params=params, headers=scene.contact)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5
    assert set(seen) == made


async def test_another_clients_scheduled_payments_are_404(
    scene: Scene, invoice: dict[str, Any], factory: Factory, clock: FrozenClock
) -> None:
    other = await sibling(scene)
    theirs_invoice = await other.invoice((other.hosting, 1_000), due=LATER)
    theirs = await other.scheduled(theirs_invoice["id"], 1_000, LATER)
    mine = await scene.scheduled(invoice["id"], 1_000, LATER)
    path = f"{SCHEDULED}/{theirs['id']}"

    assert_problem(await scene.http.get(path, headers=scene.contact), 404)
    patch = await scene.http.patch(
        path, json={"amount": 1}, headers={**scene.contact, "If-Match": '"v1"'}
    )
    assert_problem(patch, 404)
    assert_problem(await scene.http.post(f"{path}/cancel", headers=scene.contact), 404)
    assert [i["id"] for i in await scene.scheduled_list()] == [mine["id"]]
    # Unknown ids answer exactly the same.
    assert_problem(await scene.http.get(f"{SCHEDULED}/{NO_SUCH_ID}", headers=scene.contact), 404)
    # Nothing happened to theirs.
    still = await other.http.get(path, headers=other.contact)
    assert (still.json()["status"], still.json()["amount"]) == ("scheduled", 1_000)

    # Staff see every client's, and can narrow to one; another tenant's staff see none.
    listed = await scene.http.get(SCHEDULED, headers=scene.staff)
    assert {i["id"] for i in listed.json()["items"]} == {mine["id"], theirs["id"]}
    narrowed = await scene.http.get(
        SCHEDULED, params={"client_id": str(other.client.id)}, headers=scene.staff
    )
    assert [i["id"] for i in narrowed.json()["items"]] == [theirs["id"]]
    staff_get = await scene.http.get(path, headers=scene.staff)
    assert staff_get.status_code == 200
    assert staff_get.headers["ETag"] == '"v1"'
    elsewhere = await build_scene(factory, scene.http, name="Other MSP")
    assert_problem(await scene.http.get(path, headers=elsewhere.staff), 404)
    assert (await scene.http.get(SCHEDULED, headers=elsewhere.staff)).json()["items"] == []


# -- change ---------------------------------------------------------------------------------


async def test_patch_honours_if_match(
    scene: Scene, invoice: dict[str, Any], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    created = await scene.scheduled(invoice["id"], 1_000, LATER)
    path = f"{SCHEDULED}/{created['id']}"
    v1 = (await scene.http.get(path, headers=scene.contact)).headers["ETag"]
    new_day = LATER + timedelta(days=2)

    changed = await scene.http.patch(
        path,
        json={"amount": 1_500, "scheduled_for": new_day.isoformat()},
        headers={**scene.contact, "If-Match": v1},
    )

    assert changed.status_code == 200, changed.text
    v2 = changed.headers["ETag"]
    assert v2 != v1
    assert (changed.json()["amount"], changed.json()["scheduled_for"]) == (
        1_500,
        new_day.isoformat(),
    )
    row = await scheduled_row(sessionmaker, created["id"])
    assert row.next_attempt_at == start_of_day(new_day, "UTC")
    assert (await event_types(sessionmaker, row.id))["scheduled_payment.updated"] == 1

    stale = await scene.http.patch(
        path, json={"amount": 2_000}, headers={**scene.contact, "If-Match": v1}
    )
    assert_problem(stale, 412)
    assert (await scheduled_row(sessionmaker, created["id"])).amount == 1_500

    only_amount = await scene.http.patch(
        path, json={"amount": 2_000}, headers={**scene.contact, "If-Match": v2}
    )
    assert only_amount.status_code == 200
    assert only_amount.json()["scheduled_for"] == new_day.isoformat()
    assert only_amount.headers["ETag"] not in (v1, v2)
    assert (await scene.http.get(path, headers=scene.contact)).headers[
        "ETag"
    ] == only_amount.headers["ETag"]
    # Without If-Match the last write wins, as the contract allows.
    unguarded = await scene.http.patch(path, json={"amount": 2_100}, headers=scene.contact)
    assert unguarded.status_code == 200
    assert unguarded.json()["amount"] == 2_100


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"scheduled_for": (TODAY - timedelta(days=1)).isoformat()}, ["body", "scheduled_for"]),
        ({"amount": 0}, ["body", "amount"]),
        ({"amount": 10_001}, ["body", "amount"]),
        ({"status": "canceled"}, ["body", "status"]),
        ({"payment_method_id": NO_SUCH_ID}, ["body", "payment_method_id"]),
    ],
    ids=["past", "zero", "above-balance", "status", "method"],
)
async def test_patch_refuses_what_create_would(
    scene: Scene,
    invoice: dict[str, Any],
    sessionmaker: async_sessionmaker[AsyncSession],
    change: dict[str, Any],
    loc: list[str],
) -> None:
    created = await scene.scheduled(invoice["id"], 1_000, LATER)

    response = await scene.http.patch(
        f"{SCHEDULED}/{created['id']}", json=change, headers=scene.contact
    )

    body = assert_problem(response, 422)
    assert loc in [e["loc"] for e in body["errors"]]
    row = await scheduled_row(sessionmaker, created["id"])
    assert (row.amount, row.scheduled_for, row.version) == (1_000, LATER, 1)


async def test_patch_amount_is_checked_against_the_balance_now(
    scene: Scene, invoice: dict[str, Any]
) -> None:
    created = await scene.scheduled(invoice["id"], 1_000, LATER)
    assert (await scene.pay_now(invoice["id"], 7_000)).status_code == 201
    path = f"{SCHEDULED}/{created['id']}"

    assert_problem(await scene.http.patch(path, json={"amount": 3_001}, headers=scene.contact), 422)
    ok = await scene.http.patch(path, json={"amount": 3_000}, headers=scene.contact)
    assert ok.status_code == 200, ok.text


# -- cancel, and what can no longer change --------------------------------------------------


async def test_cancel_is_final_and_repeatable(
    scene: Scene, invoice: dict[str, Any], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    created = await scene.scheduled(invoice["id"], 1_000, LATER)
    path = f"{SCHEDULED}/{created['id']}"

    first = await scene.http.post(f"{path}/cancel", headers=scene.contact)
    second = await scene.http.post(f"{path}/cancel", headers=scene.contact)

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["ETag"] == first.headers["ETag"]
    assert first.json()["status"] == "canceled"
    assert first.json()["cancel_reason"] == "canceled by the client"
    assert (await event_types(sessionmaker, created["id"]))["scheduled_payment.canceled"] == 1
    patch = await scene.http.patch(path, json={"amount": 5}, headers=scene.contact)
    assert_problem(patch, 409, "scheduled-payment-locked")


async def test_once_started_it_cannot_be_changed_or_canceled(
    scene: Scene,
    invoice: dict[str, Any],
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
) -> None:
    today = await scene.scheduled(invoice["id"], 1_000, TODAY)
    path = f"{SCHEDULED}/{today['id']}"
    await runner.claim(10)  # processing

    processing = await scene.http.get(path, headers=scene.contact)
    assert processing.json()["status"] == "processing"
    etag = processing.headers["ETag"]
    for response in (
        await scene.http.patch(
            path, json={"amount": 5}, headers={**scene.contact, "If-Match": etag}
        ),
        await scene.http.patch(
            path, json={"scheduled_for": LATER.isoformat()}, headers=scene.contact
        ),
        await scene.http.post(f"{path}/cancel", headers=scene.contact),
    ):
        assert_problem(response, 409, "scheduled-payment-locked")

    clock.advance(seconds=300)
    assert (await runner.run_once()).succeeded == 1
    for response in (
        await scene.http.patch(path, json={"amount": 5}, headers=scene.contact),
        await scene.http.post(f"{path}/cancel", headers=scene.contact),
    ):
        assert_problem(response, 409, "scheduled-payment-locked")
    assert (await scene.http.get(path, headers=scene.contact)).json()["status"] == "succeeded"
    assert len(gateway.charges) == 1


async def test_a_failed_one_cannot_be_changed_either(
    scene: Scene, invoice: dict[str, Any], runner: PaymentRunner
) -> None:
    stolen = await scene.add_card("tok_chargeDeclinedStolenCard")
    failing = await scene.scheduled(invoice["id"], 1_000, TODAY, method_id=stolen["id"])
    assert (await runner.run_once()).failed == 1
    path = f"{SCHEDULED}/{failing['id']}"

    got = (await scene.http.get(path, headers=scene.contact)).json()
    assert (got["status"], got["failure_reason"]) == ("failed", "Your card was declined.")
    assert_problem(await scene.http.patch(path, json={"amount": 5}, headers=scene.contact), 409)
    assert_problem(await scene.http.post(f"{path}/cancel", headers=scene.contact), 409)


async def test_a_canceled_payment_is_never_run(
    scene: Scene, invoice: dict[str, Any], runner: PaymentRunner, gateway: FakeGateway
) -> None:
    created = await scene.scheduled(invoice["id"], 1_000, TODAY)
    await scene.http.post(f"{SCHEDULED}/{created['id']}/cancel", headers=scene.contact)

    report = await runner.run_once()

    assert report.claimed == 0
    assert gateway.charge_calls == 0
