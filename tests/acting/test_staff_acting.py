"""Staff act for a client on every client money action (add a method from a token, pay, pay
several, schedule, change, cancel, try now, AutoPay): naming it with `client_id` (the query
for reads, the body otherwise), under the same rules a client meets; another tenant's client
is 404 in a query and 422 in a body; API keys are refused (403)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import FakeGateway
from tests.autopay.helpers import autopay_plan, rule
from tests.factories import CONSENT, api_key_for, assert_problem, bearer
from tests.scheduling.helpers import (
    API,
    AUTOPAY,
    INVOICES,
    METHODS,
    PREVIEW,
    SCHEDULED,
    TODAY,
    Scene,
    build_scene,
    scheduled_row,
    sibling,
)

DUE = TODAY + timedelta(days=10)
LATER = TODAY + timedelta(days=3)
PAYMENTS = f"{API}/payments"


def errors_at(body: dict[str, Any]) -> list[list[Any]]:
    return [e["loc"] for e in body["errors"]]


async def test_staff_add_a_method_from_a_token_for_the_client_they_name(scene: Scene) -> None:
    other = await build_scene(scene.factory, scene.http, name="Other MSP")
    card = {"type": "card", "token": "tok_amex"}

    unnamed = assert_problem(await scene.http.post(METHODS, json=card, headers=scene.staff), 422)
    assert ["body", "client_id"] in errors_at(unnamed)
    foreign = {**card, "client_id": str(other.client.id)}
    assert ["body", "client_id"] in errors_at(
        assert_problem(await scene.http.post(METHODS, json=foreign, headers=scene.staff), 422)
    )
    added = await scene.http.post(
        METHODS, json={**card, "client_id": str(scene.client.id)}, headers=scene.staff
    )

    assert added.status_code == 201, added.text
    assert added.json()["client_id"] == str(scene.client.id)
    own = await scene.http.get(METHODS, headers=scene.contact)
    assert added.json()["id"] in [m["id"] for m in own.json()["items"]]
    # The same rules: the same card again is refused, as it would be for the client.
    again = await scene.http.post(
        METHODS, json={**card, "client_id": str(scene.client.id)}, headers=scene.staff
    )
    assert_problem(again, 409)


async def test_staff_pay_an_invoice_and_several_for_its_client(
    scene: Scene, gateway: FakeGateway, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    neighbour = await sibling(scene)
    other = await build_scene(scene.factory, scene.http, name="Other MSP")
    one, two, three = [
        await scene.invoice((scene.hosting, n), due=DUE) for n in (1_000, 2_000, 3_000)
    ]
    theirs = await other.invoice((other.hosting, 500), due=DUE)
    card = {"payment_method_id": scene.card["id"]}

    # Pay now: the invoice says whose it is; naming another client, or paying with another
    # client's card, is refused; another tenant's invoice does not exist.
    wrong_client = {**card, "client_id": str(neighbour.client.id)}
    assert_problem(
        await scene.http.post(
            f"{INVOICES}/{one['id']}/pay", json=wrong_client, headers=scene.staff
        ),
        422,
    )
    wrong_card = {"payment_method_id": neighbour.card["id"]}
    assert_problem(
        await scene.http.post(f"{INVOICES}/{one['id']}/pay", json=wrong_card, headers=scene.staff),
        422,
    )
    assert_problem(
        await scene.http.post(f"{INVOICES}/{theirs['id']}/pay", json=card, headers=scene.staff), 404
    )
    too_much = {**card, "amount": 1_001}
    assert_problem(
        await scene.http.post(f"{INVOICES}/{one['id']}/pay", json=too_much, headers=scene.staff),
        422,
    )
    paid = await scene.http.post(f"{INVOICES}/{one['id']}/pay", json=card, headers=scene.staff)
    assert paid.status_code == 201, paid.text
    assert paid.json()["client_id"] == str(scene.client.id)

    several = {**card, "client_id": str(scene.client.id), "amount": 2_500}
    response = await scene.http.post(PAYMENTS, json=several, headers=scene.staff)
    assert response.status_code == 201, response.text
    assert [(a["invoice_id"], a["amount"]) for a in response.json()["allocations"]] == [
        (two["id"], 2_000),
        (three["id"], 500),
    ]
    assert sorted(c.amount for c in gateway.charges) == [1_000, 2_500]


async def test_staff_schedule_change_and_cancel_under_the_clients_rules(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    other = await build_scene(scene.factory, scene.http, name="Other MSP")
    invoice = await scene.invoice((scene.hosting, 4_000), due=DUE)
    body = {
        "invoice_id": invoice["id"],
        "payment_method_id": scene.card["id"],
        "amount": 3_000,
        "scheduled_for": LATER.isoformat(),
        "client_id": str(scene.client.id),
    }
    foreign = {**body, "client_id": str(other.client.id)}
    assert ["body", "client_id"] in errors_at(
        assert_problem(await scene.http.post(SCHEDULED, json=foreign, headers=scene.staff), 422)
    )
    past = {**body, "scheduled_for": (TODAY - timedelta(days=1)).isoformat()}
    assert_problem(await scene.http.post(SCHEDULED, json=past, headers=scene.staff), 422)
    made = await scene.http.post(SCHEDULED, json=body, headers=scene.staff)
    assert made.status_code == 201, made.text
    sp = made.json()
    over = {**body, "amount": 1_001}
    assert_problem(
        await scene.http.post(SCHEDULED, json=over, headers=scene.staff),
        422,
        "scheduled-over-balance",
    )

    bank = await scene.add_card("tok_ach")
    change = {"amount": 4_000, "scheduled_for": DUE.isoformat(), "payment_method_id": bank["id"]}
    changed = await scene.http.patch(f"{SCHEDULED}/{sp['id']}", json=change, headers=scene.staff)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["amount"], changed.json()["payment_method_id"]) == (4_000, bank["id"])
    too_much = await scene.http.patch(
        f"{SCHEDULED}/{sp['id']}", json={"amount": 4_001}, headers=scene.staff
    )
    assert_problem(too_much, 422)
    assert_problem(
        await scene.http.post(f"{SCHEDULED}/{sp['id']}/cancel", headers=other.staff), 404
    )
    canceled = await scene.http.post(f"{SCHEDULED}/{sp['id']}/cancel", headers=scene.staff)
    assert (canceled.status_code, canceled.json()["status"]) == (200, "canceled")
    assert (await scheduled_row(sessionmaker, sp["id"])).status == "canceled"


async def test_staff_read_and_set_autopay_for_the_client_in_the_query(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    other = await build_scene(scene.factory, scene.http, name="Other MSP")
    invoice = await scene.invoice((scene.hosting, 900), due=DUE)
    body = {"enabled": True, "consent": CONSENT, "rules": [rule(scene.card, scene.hosting)]}
    mine = {"client_id": str(scene.client.id)}
    theirs = {"client_id": str(other.client.id)}
    unknown = {"client_id": str(uuid.uuid4())}

    for params in (theirs, unknown):
        assert_problem(await scene.http.get(AUTOPAY, params=params, headers=scene.staff), 404)
        assert_problem(await scene.http.get(PREVIEW, params=params, headers=scene.staff), 404)
        assert_problem(
            await scene.http.put(AUTOPAY, params=params, json=body, headers=scene.staff), 404
        )
    assert_problem(await scene.http.put(AUTOPAY, json=body, headers=scene.staff), 422)
    # The client's own rules apply: another client's card is refused.
    foreign_card = {**body, "rules": [rule(other.card, scene.hosting)]}
    assert_problem(
        await scene.http.put(AUTOPAY, params=mine, json=foreign_card, headers=scene.staff), 422
    )

    put = await scene.http.put(AUTOPAY, params=mine, json=body, headers=scene.staff)

    assert put.status_code == 200, put.text
    got = await scene.http.get(AUTOPAY, params=mine, headers=scene.staff)
    assert got.json() == put.json() == (await scene.http.get(AUTOPAY, headers=scene.contact)).json()
    assert await autopay_plan(sessionmaker, invoice["id"]) == [(900, DUE, scene.card["id"])]
    preview = await scene.http.get(PREVIEW, params=mine, headers=scene.staff)
    assert [i["state"] for i in preview.json()["items"]] == ["scheduled"]


Call = tuple[str, str, dict[str, Any] | None]


async def money_actions(scene: Scene) -> dict[str, Call]:
    """Every client money action, as an API key would call it for the scene's client."""
    invoice = await scene.invoice((scene.hosting, 1_000), due=DUE)
    sp = await scene.scheduled(invoice["id"], 500, LATER)
    named = {"client_id": str(scene.client.id)}
    card = {"payment_method_id": scene.card["id"]}
    schedule = {"invoice_id": invoice["id"], "amount": 1, "scheduled_for": LATER.isoformat()}
    return {
        "add a method": ("POST", METHODS, {"type": "card", "token": "tok_amex", **named}),
        "pay": ("POST", f"{INVOICES}/{invoice['id']}/pay", card),
        "pay several": ("POST", PAYMENTS, {**card, **named}),
        "schedule": ("POST", SCHEDULED, {**schedule, **card, **named}),
        "change": ("PATCH", f"{SCHEDULED}/{sp['id']}", {"amount": 400}),
        "cancel": ("POST", f"{SCHEDULED}/{sp['id']}/cancel", None),
        "try now": ("POST", f"{SCHEDULED}/{sp['id']}/retry", {}),
        "set autopay": ("PUT", f"{AUTOPAY}?client_id={scene.client.id}", {"enabled": False}),
        "read autopay": ("GET", f"{AUTOPAY}?client_id={scene.client.id}", None),
        "preview autopay": ("GET", f"{PREVIEW}?client_id={scene.client.id}", None),
    }


ACTIONS = [
    "add a method",
    "pay",
    "pay several",
    "schedule",
    "change",
    "cancel",
    "try now",
    "set autopay",
    "read autopay",
    "preview autopay",
]


@pytest.mark.parametrize("action", ACTIONS)
async def test_api_keys_cannot_act_for_a_client(
    scene: Scene, gateway: FakeGateway, sessionmaker: async_sessionmaker[AsyncSession], action: str
) -> None:
    actions = await money_actions(scene)
    assert sorted(actions) == sorted(ACTIONS)
    method, path, body = actions[action]
    _, secret = await api_key_for(scene.factory, scene.tenant)

    response = await scene.http.request(method, path, json=body, headers=bearer(secret))

    assert_problem(response, 403)
    assert gateway.summary()["calls"] == 0
    assert (
        await scheduled_row(sessionmaker, actions["cancel"][1].split("/")[-2])
    ).status == "scheduled"
