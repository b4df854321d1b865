"""GET/PATCH /me/notifications: a person turns off optional kinds, and is then not mailed them;
required kinds and unknown names are refused."""

from __future__ import annotations

from tests.factories import assert_problem
from tests.notifications.conftest import Mail
from tests.payments.helpers import billing_world, open_invoice

PREFS = "/api/v1/me/notifications"


async def test_everything_is_on_until_turned_off(mail: Mail) -> None:
    world = await mail.factory.world()
    response = await mail.http.get(PREFS, headers=world.contact.headers)
    assert response.status_code == 200
    body = response.json()
    assert body.pop("always_sent") == ["invitation", "password_reset", "payment_failed"]
    assert set(body.values()) == {True}

    changed = await mail.http.patch(
        PREFS, json={"invoice_issued": False, "card_expiring": False}, headers=world.contact.headers
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["invoice_issued"], changed.json()["card_expiring"]) == (False, False)
    again = await mail.http.patch(
        PREFS, json={"card_expiring": True}, headers=world.contact.headers
    )
    assert (again.json()["invoice_issued"], again.json()["card_expiring"]) == (False, True)
    fresh = await mail.http.get(PREFS, headers=world.contact.headers)
    assert fresh.json() == again.json()


async def test_a_person_who_turned_a_kind_off_is_not_mailed_it(mail: Mail) -> None:
    billing = await billing_world(mail.factory, mail.http)
    colleague = await mail.factory.contact(billing.world.tenant, billing.world.client)
    off = await mail.http.patch(
        PREFS, json={"invoice_issued": False}, headers=billing.contact.headers
    )
    assert off.status_code == 200
    await open_invoice(mail.http, billing.staff, billing.client_id, billing.category)

    assert await mail.send() == {"sent": 1}
    assert [m["To"] for m in mail.mailbox.received] == [colleague.user.email]


async def test_required_kinds_unknown_kinds_and_nulls_are_refused(mail: Mail) -> None:
    world = await mail.factory.world()
    for body in ({"payment_failed": False}, {"no_such_kind": False}, {"invoice_issued": None}):
        response = await mail.http.patch(PREFS, json=body, headers=world.contact.headers)
        assert_problem(response, 422)
    assert (await mail.http.get(PREFS)).status_code == 401
