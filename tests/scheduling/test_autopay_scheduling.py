"""What AutoPay does to scheduled payments: one is made when an invoice is issued, for the
covered lines, on `due_date - days_before_due` (never before today); changing the setting
moves, reprices or cancels the ones that have not started; the preview explains it all."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.gateways.fake import FakeGateway
from app.scheduled_payments.rules import start_of_day
from app.scheduler.runner import PaymentRunner
from tests.factories import Factory, api_key_for, assert_problem, bearer
from tests.scheduling.helpers import (
    DUE,
    INVOICES,
    METHODS,
    SCHEDULED,
    TODAY,
    Scene,
    build_scene,
    event_types,
    scheduled_for_invoice,
    scheduled_row,
)

# -- the issue hook -------------------------------------------------------------------------


async def test_issuing_schedules_the_covered_lines_on_due_minus_days(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await scene.enable_autopay(categories=[scene.hosting], days=3)

    invoice = await scene.invoice(
        (scene.hosting, 7_000), (scene.helpdesk, 3_000), (scene.hosting, 500), due=DUE
    )

    (row,) = await scheduled_for_invoice(sessionmaker, invoice["id"])
    assert (row.origin, row.status, row.amount, row.currency) == (
        "autopay",
        "scheduled",
        7_500,
        "USD",
    )
    assert row.scheduled_for == DUE - timedelta(days=3)
    assert row.next_attempt_at == start_of_day(DUE - timedelta(days=3), "UTC")
    assert row.payment_method_id.hex == scene.card["id"].replace("-", "")
    assert row.attempts == 0
    assert await event_types(sessionmaker, row.id) == {"scheduled_payment.created": 1}
    listed = await scene.scheduled_list()
    assert [(i["id"], i["origin"], i["amount"]) for i in listed] == [
        (str(row.id), "autopay", 7_500)
    ]


async def test_nothing_is_scheduled_when_no_line_is_covered(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await scene.enable_autopay(categories=[scene.hosting])

    invoice = await scene.invoice((scene.helpdesk, 3_000), due=DUE)

    assert await scheduled_for_invoice(sessionmaker, invoice["id"]) == []


async def test_nothing_is_scheduled_while_autopay_is_off(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    invoice = await scene.invoice((scene.hosting, 3_000), due=DUE)
    assert await scheduled_for_invoice(sessionmaker, invoice["id"]) == []

    await scene.enable_autopay()
    await scene.put_autopay({"enabled": False})
    later = await scene.invoice((scene.hosting, 3_000), due=DUE)
    assert await scheduled_for_invoice(sessionmaker, later["id"]) == []


async def test_the_date_is_never_before_today(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await scene.enable_autopay(days=5)

    soon = await scene.invoice((scene.hosting, 1_000), due=TODAY + timedelta(days=2))
    overdue = await scene.invoice((scene.hosting, 1_000), due=TODAY - timedelta(days=4))
    exact = await scene.invoice((scene.hosting, 1_000), due=TODAY + timedelta(days=5))

    for invoice in (soon, overdue, exact):
        (row,) = await scheduled_for_invoice(sessionmaker, invoice["id"])
        assert row.scheduled_for == TODAY, invoice["due_date"]


async def test_today_is_the_tenants_today(
    factory: Factory, client: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # 03:00 UTC on 2 March is still 1 March in New York.
    with FrozenClock(datetime(2026, 3, 2, 3, 0, tzinfo=UTC)):
        scene = await build_scene(factory, client, timezone="America/New_York")
        await scene.enable_autopay(days=30)

        invoice = await scene.invoice((scene.hosting, 1_000), due=date(2026, 3, 10))

        (row,) = await scheduled_for_invoice(sessionmaker, invoice["id"])
        assert row.scheduled_for == date(2026, 3, 1)
        # Due from the start of that day in New York (EST, UTC-5): already due.
        assert row.next_attempt_at == datetime(2026, 3, 1, 5, 0, tzinfo=UTC)


async def test_the_covered_amount_is_capped_to_what_the_invoice_owes(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await scene.enable_autopay(categories=[scene.hosting, scene.helpdesk], days=1)
    invoice = await scene.invoice((scene.hosting, 4_000), (scene.helpdesk, 6_000), due=DUE)

    (row,) = await scheduled_for_invoice(sessionmaker, invoice["id"])
    assert row.amount == 10_000


async def test_an_api_key_issuing_a_synced_invoice_schedules_it_too(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await scene.enable_autopay()
    draft = await scene.draft((scene.hosting, 2_500), due=DUE)
    _, secret = await api_key_for(scene.factory, scene.tenant)

    issued = await scene.http.post(f"{INVOICES}/{draft['id']}/issue", headers=bearer(secret))

    assert issued.status_code == 200, issued.text
    (row,) = await scheduled_for_invoice(sessionmaker, draft["id"])
    assert (row.origin, row.amount) == ("autopay", 2_500)


async def test_a_zero_invoice_is_paid_on_issue_and_gets_nothing(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await scene.enable_autopay()
    invoice = await scene.invoice((scene.hosting, 0), due=DUE)
    assert invoice["status"] == "paid"
    assert await scheduled_for_invoice(sessionmaker, invoice["id"]) == []


# -- the setting changes, AutoPay's payments that have not started follow --------------------


async def test_disabling_cancels_autopays_payments_not_yet_started_only(
    scene: Scene,
    sessionmaker: async_sessionmaker[AsyncSession],
    runner: PaymentRunner,
    clock: FrozenClock,
) -> None:
    await scene.enable_autopay(days=0)
    waiting = await scene.invoice((scene.hosting, 1_000), due=DUE)
    running = await scene.invoice((scene.hosting, 2_000), due=TODAY)
    manual_invoice = await scene.invoice((scene.helpdesk, 3_000), due=DUE)
    manual = await scene.scheduled(manual_invoice["id"], 3_000, DUE)
    (waiting_row,) = await scheduled_for_invoice(sessionmaker, waiting["id"])
    (running_row,) = await scheduled_for_invoice(sessionmaker, running["id"])
    # A runner has taken the one due today (and died): it has started.
    claims = await runner.claim(10)
    assert [c.id for c in claims] == [running_row.id]

    off = await scene.put_autopay({"enabled": False})
    assert off.status_code == 200, off.text

    canceled = await scheduled_row(sessionmaker, waiting_row.id)
    assert (canceled.status, canceled.cancel_reason) == ("canceled", "AutoPay was turned off")
    assert (await event_types(sessionmaker, canceled.id))["scheduled_payment.canceled"] == 1
    assert (await scheduled_row(sessionmaker, running_row.id)).status == "processing"
    assert (await scheduled_row(sessionmaker, manual["id"])).status == "scheduled"

    # The started one still finishes once its lease lapses.
    clock.advance(seconds=300)
    report = await runner.run_once()
    assert (report.claimed, report.succeeded) == (1, 1)
    assert (await scheduled_row(sessionmaker, running_row.id)).status == "succeeded"


async def test_turning_autopay_off_and_on_again(
    scene: Scene,
    sessionmaker: async_sessionmaker[AsyncSession],
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
) -> None:
    await scene.enable_autopay(days=2)
    before = await scene.invoice((scene.hosting, 1_000), due=DUE)
    await scene.put_autopay({"enabled": False})
    during = await scene.invoice((scene.hosting, 2_000), due=DUE)

    assert await scheduled_for_invoice(sessionmaker, during["id"]) == []
    (old,) = await scheduled_for_invoice(sessionmaker, before["id"])
    assert old.status == "canceled"
    preview = await scene.preview()
    assert preview[before["id"]]["state"] == "canceled"
    assert "AutoPay was turned off" in preview[before["id"]]["reason"]
    assert preview[during["id"]]["state"] == "off"

    # Turning it on again schedules every open invoice, not only the next ones issued; what
    # was canceled stays canceled, with a new payment beside it.
    await scene.enable_autopay(days=2)
    after = await scene.invoice((scene.hosting, 3_000), due=DUE)

    for invoice, amount in ((before, 1_000), (during, 2_000), (after, 3_000)):
        rows = await scheduled_for_invoice(sessionmaker, invoice["id"])
        (new,) = [r for r in rows if r.status == "scheduled"]
        assert (new.amount, new.scheduled_for) == (amount, DUE - timedelta(2))
    assert (await scheduled_row(sessionmaker, old.id)).status == "canceled"
    preview = await scene.preview()
    assert {preview[i["id"]]["state"] for i in (before, during, after)} == {"scheduled"}

    clock.advance(days=8)
    report = await runner.run_once()
    assert (report.claimed, report.succeeded) == (3, 3)
    assert sorted(c.amount for c in gateway.charges) == [1_000, 2_000, 3_000]


async def test_changing_the_method_moves_autopays_payments_to_it(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    setting = await scene.enable_autopay(days=3)
    # AutoPay covers the hosting line; the client schedules the help-desk part by hand.
    invoice = await scene.invoice((scene.hosting, 1_000), (scene.helpdesk, 500), due=DUE)
    manual = await scene.scheduled(invoice["id"], 500, DUE)
    (autopay,) = [
        r for r in await scheduled_for_invoice(sessionmaker, invoice["id"]) if r.origin == "autopay"
    ]
    etag_before = (
        await scene.http.get(f"{SCHEDULED}/{autopay.id}", headers=scene.contact)
    ).headers["ETag"]
    new_card = await scene.add_card("tok_mastercard")

    moved = await scene.enable_autopay(method_id=new_card["id"], days=setting["days_before_due"])

    assert moved["payment_method_id"] == new_card["id"]
    row = await scheduled_row(sessionmaker, autopay.id)
    assert str(row.payment_method_id) == new_card["id"]
    assert (row.status, row.amount, row.scheduled_for) == ("scheduled", 1_000, DUE - timedelta(3))
    assert (await event_types(sessionmaker, row.id))["scheduled_payment.updated"] == 1
    after = await scene.http.get(f"{SCHEDULED}/{autopay.id}", headers=scene.contact)
    assert after.headers["ETag"] != etag_before
    # A payment the client scheduled by hand keeps the method the client chose.
    assert (
        str((await scheduled_row(sessionmaker, manual["id"])).payment_method_id) == scene.card["id"]
    )


async def test_changing_days_before_due_reschedules_never_into_the_past(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await scene.enable_autopay(days=3)
    invoice = await scene.invoice((scene.hosting, 1_000), due=DUE)
    (row,) = await scheduled_for_invoice(sessionmaker, invoice["id"])
    assert row.scheduled_for == DUE - timedelta(days=3)

    await scene.enable_autopay(days=1)
    row = await scheduled_row(sessionmaker, row.id)
    assert row.scheduled_for == DUE - timedelta(days=1)
    assert row.next_attempt_at == start_of_day(DUE - timedelta(days=1), "UTC")

    await scene.enable_autopay(days=30)
    row = await scheduled_row(sessionmaker, row.id)
    assert row.scheduled_for == TODAY
    assert row.next_attempt_at == start_of_day(TODAY, "UTC")


async def test_changing_categories_reprices_or_cancels(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await scene.enable_autopay(categories=[scene.hosting])
    mixed = await scene.invoice((scene.hosting, 7_000), (scene.helpdesk, 3_000), due=DUE)
    hosting_only = await scene.invoice((scene.hosting, 2_000), due=DUE)
    (mixed_row,) = await scheduled_for_invoice(sessionmaker, mixed["id"])
    (hosting_row,) = await scheduled_for_invoice(sessionmaker, hosting_only["id"])

    await scene.enable_autopay(categories=[scene.hosting, scene.helpdesk])
    assert (await scheduled_row(sessionmaker, mixed_row.id)).amount == 10_000
    assert (await scheduled_row(sessionmaker, hosting_row.id)).amount == 2_000

    await scene.enable_autopay(categories=[scene.helpdesk])
    assert (await scheduled_row(sessionmaker, mixed_row.id)).amount == 3_000
    dropped = await scheduled_row(sessionmaker, hosting_row.id)
    assert dropped.status == "canceled"
    assert dropped.cancel_reason is not None
    assert "no longer covers" in dropped.cancel_reason


async def test_a_failed_put_changes_no_payment(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await scene.enable_autopay(days=3)
    invoice = await scene.invoice((scene.hosting, 1_000), due=DUE)
    current = await scene.http.get("/api/v1/autopay", headers=scene.contact)

    stale = await scene.put_autopay({"enabled": False}, if_match='"v0"')

    assert_problem(stale, 412)
    (row,) = await scheduled_for_invoice(sessionmaker, invoice["id"])
    assert row.status == "scheduled"
    assert (await scene.http.get("/api/v1/autopay", headers=scene.contact)).json() == current.json()


# -- payment methods AutoPay or a scheduled payment still needs -----------------------------


async def test_a_method_in_use_cannot_be_deleted_until_released(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    spare = await scene.add_card("tok_mastercard")
    await scene.enable_autopay(method_id=spare["id"])

    refused = await scene.http.delete(f"{METHODS}/{spare['id']}", headers=scene.contact)
    assert_problem(refused, 409)

    # AutoPay moves to the other card, but a payment scheduled by hand still uses this one.
    await scene.enable_autopay(method_id=scene.card["id"])
    invoice = await scene.invoice((scene.helpdesk, 1_000), due=DUE)
    manual = await scene.scheduled(invoice["id"], 1_000, DUE, method_id=spare["id"])
    refused = await scene.http.delete(f"{METHODS}/{spare['id']}", headers=scene.contact)
    assert_problem(refused, 409)

    canceled = await scene.http.post(f"{SCHEDULED}/{manual['id']}/cancel", headers=scene.contact)
    assert canceled.status_code == 200
    deleted = await scene.http.delete(f"{METHODS}/{spare['id']}", headers=scene.contact)
    assert deleted.status_code == 204
    listed = (await scene.http.get(METHODS, headers=scene.contact)).json()["items"]
    assert spare["id"] not in [m["id"] for m in listed]


async def test_a_method_autopay_no_longer_runs_on_can_be_deleted_and_not_chosen_again(
    scene: Scene,
) -> None:
    spare = await scene.add_card("tok_mastercard")
    await scene.enable_autopay(method_id=spare["id"])
    off = await scene.put_autopay(
        {"enabled": False, "payment_method_id": spare["id"], "service_category_ids": []}
    )
    assert off.status_code == 200, off.text

    deleted = await scene.http.delete(f"{METHODS}/{spare['id']}", headers=scene.contact)
    assert deleted.status_code == 204

    again = await scene.put_autopay(
        {
            "enabled": True,
            "payment_method_id": spare["id"],
            "service_category_ids": [str(scene.hosting.id)],
        }
    )
    assert_problem(again, 422)


async def test_a_method_whose_scheduled_payments_are_finished_can_be_deleted(
    scene: Scene, runner: PaymentRunner, clock: FrozenClock
) -> None:
    spare = await scene.add_card("tok_chargeDeclinedStolenCard")
    invoice = await scene.invoice((scene.hosting, 1_000), due=DUE)
    await scene.scheduled(invoice["id"], 1_000, TODAY, method_id=spare["id"])
    in_use = await scene.http.delete(f"{METHODS}/{spare['id']}", headers=scene.contact)
    assert_problem(in_use, 409)

    report = await runner.run_once()
    assert report.failed == 1

    deleted = await scene.http.delete(f"{METHODS}/{spare['id']}", headers=scene.contact)
    assert deleted.status_code == 204


# -- the preview ----------------------------------------------------------------------------


async def test_preview_when_autopay_was_never_set(scene: Scene) -> None:
    invoice = await scene.invoice((scene.hosting, 1_000), due=DUE)

    response = await scene.http.get("/api/v1/autopay/preview", headers=scene.contact)

    assert response.status_code == 200
    body = response.json()
    assert body["enabled"] is False
    (item,) = body["items"]
    assert item["invoice_id"] == invoice["id"]
    assert (item["state"], item["will_pay"]) == ("off", False)
    assert item["reason"]
    assert item["covered_amount"] == 0


async def test_preview_explains_every_open_invoice(
    scene: Scene,
    sessionmaker: async_sessionmaker[AsyncSession],
    runner: PaymentRunner,
    clock: FrozenClock,
) -> None:
    issued_before = await scene.invoice((scene.hosting, 1_000), due=DUE)
    await scene.enable_autopay(categories=[scene.hosting], days=3)
    scheduled = await scene.invoice(
        (scene.hosting, 2_000), (scene.helpdesk, 500), due=DUE + timedelta(days=5)
    )
    not_covered = await scene.invoice((scene.helpdesk, 3_000), due=DUE)
    paid_part = await scene.invoice((scene.hosting, 4_000), (scene.helpdesk, 100), due=TODAY)
    fully_paid = await scene.invoice((scene.hosting, 4_500), due=TODAY)
    paid_row = (await scheduled_for_invoice(sessionmaker, paid_part["id"]))[0]
    assert (await runner.run_once()).succeeded == 2  # the two due today

    preview = await scene.preview()

    assert fully_paid["id"] not in preview  # paid in full: no longer open
    assert set(preview) == {
        issued_before["id"],
        scheduled["id"],
        not_covered["id"],
        paid_part["id"],
    }
    item = preview[scheduled["id"]]
    assert (item["state"], item["will_pay"]) == ("scheduled", True)
    assert (item["amount"], item["covered_amount"]) == (2_000, 2_000)
    assert item["scheduled_for"] == (DUE + timedelta(days=2)).isoformat()
    assert item["payment_method_id"] == scene.card["id"]
    assert item["scheduled_payment_id"] is not None
    assert item["scheduled_for"] in item["reason"]
    # Issued before AutoPay was on, and scheduled when it was turned on.
    item = preview[issued_before["id"]]
    assert (item["state"], item["will_pay"], item["covered_amount"]) == ("scheduled", True, 1_000)
    item = preview[not_covered["id"]]
    assert (item["state"], item["will_pay"], item["covered_amount"]) == ("not_covered", False, 0)
    item = preview[paid_part["id"]]
    assert (item["state"], item["will_pay"]) == ("paid", False)
    assert item["scheduled_payment_id"] == str(paid_row.id)
    assert item["balance"] == 100
    for item in preview.values():
        assert item["reason"], item

    # Staff see the same explanation for the client.
    as_staff = await scene.http.get(
        "/api/v1/autopay/preview", params={"client_id": str(scene.client.id)}, headers=scene.staff
    )
    assert as_staff.status_code == 200
    assert {i["invoice_id"]: i for i in as_staff.json()["items"]} == preview

    await scene.put_autopay({"enabled": False})
    preview = await scene.preview()
    assert preview[scheduled["id"]]["state"] == "canceled"
    assert preview[not_covered["id"]]["state"] == "off"


async def test_preview_shows_processing_and_failed(
    scene: Scene,
    sessionmaker: async_sessionmaker[AsyncSession],
    runner: PaymentRunner,
    clock: FrozenClock,
) -> None:
    stolen = await scene.add_card("tok_chargeDeclinedStolenCard")
    await scene.enable_autopay(method_id=stolen["id"])
    failing = await scene.invoice((scene.hosting, 1_000), due=TODAY)
    assert (await runner.run_once()).failed == 1

    item = (await scene.preview())[failing["id"]]
    assert (item["state"], item["will_pay"]) == ("failed", False)
    assert "Your card was declined." in item["reason"]

    # AutoPay on a good card again: the failed invoice is scheduled anew on it.
    await scene.enable_autopay()
    taken = await scene.invoice((scene.hosting, 2_000), due=TODAY)
    assert len(await runner.claim(10)) == 2  # taken by a runner, not finished

    preview = await scene.preview()
    for invoice in (failing, taken):
        item = preview[invoice["id"]]
        assert (item["state"], item["will_pay"]) == ("processing", True)


async def test_preview_for_a_tenant_in_another_zone_uses_its_dates(
    factory: Factory, client: Any
) -> None:
    with FrozenClock(datetime(2026, 3, 2, 3, 0, tzinfo=UTC)):
        scene = await build_scene(factory, client, timezone="America/New_York")
        await scene.enable_autopay(days=3)
        invoice = await scene.invoice((scene.hosting, 1_000), due=date(2026, 3, 3))

        item = (await scene.preview())[invoice["id"]]

    assert item["scheduled_for"] == "2026-03-01"
    assert item["state"] == "scheduled"
