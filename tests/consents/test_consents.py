"""Consent to ACH debits and to AutoPay: versioned texts (built-in version 1, staff set the
next), a request without consent or naming an old version refused (422), and each acceptance
kept as a record (user, client, kind, version, SHA-256 of the text, time, IP address, user
agent) that later versions never change; GET /consents lists them."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from httpx import Response

from app.consents.texts import DEFAULT_TEXTS
from app.core.clock import FrozenClock
from app.models import ConsentRecord, PaymentMethod
from tests.autopay.helpers import rule
from tests.factories import assert_problem, count_rows
from tests.scheduling.helpers import API, AUTOPAY, METHODS, START, Scene, build_scene, sibling

TEXTS = f"{API}/consent-texts"
CONSENTS = f"{API}/consents"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) BillingPortalTest/1.0"
ACH_TEXT = "I authorize Northwind to debit my company's bank account for its invoices, v2."


def consent(version: int) -> dict[str, Any]:
    return {"accepted": True, "text_version": version}


async def add_bank(
    scene: Scene, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    sent = {**(headers or scene.contact), "User-Agent": BROWSER}
    return await scene.http.post(
        METHODS, json={"type": "ach", "token": "tok_ach", **body}, headers=sent
    )


async def turn_on_autopay(scene: Scene, body: dict[str, Any], *, staff: bool = False) -> Response:
    payload = {"enabled": True, "rules": [rule(scene.card, scene.hosting)], **body}
    headers = {**(scene.staff if staff else scene.contact), "User-Agent": BROWSER}
    params = {"client_id": str(scene.client.id)} if staff else None
    return await scene.http.put(AUTOPAY, json=payload, headers=headers, params=params)


async def set_text(scene: Scene, kind: str, text: str) -> dict[str, Any]:
    response = await scene.http.put(f"{TEXTS}/{kind}", json={"text": text}, headers=scene.staff)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def listed(scene: Scene, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    response = await scene.http.get(CONSENTS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("kind", ["ach_debit", "autopay"])
async def test_the_built_in_text_is_version_1_until_staff_set_one(scene: Scene, kind: str) -> None:
    for headers in (scene.contact, scene.staff):
        response = await scene.http.get(f"{TEXTS}/{kind}", headers=headers)
        assert response.json() == {"kind": kind, "version": 1, "text": DEFAULT_TEXTS[kind]}

    assert await set_text(scene, kind, f"Our own words for {kind}, first.") == {
        "kind": kind,
        "version": 2,
        "text": f"Our own words for {kind}, first.",
    }
    assert (await set_text(scene, kind, f"Our own words for {kind}, second."))["version"] == 3
    got = await scene.http.get(f"{TEXTS}/{kind}", headers=scene.contact)
    assert (got.json()["version"], got.json()["text"]) == (3, f"Our own words for {kind}, second.")
    # Another tenant still reads the built-in text.
    other = await build_scene(scene.factory, scene.http, name="Other MSP")
    theirs = await scene.http.get(f"{TEXTS}/{kind}", headers=other.contact)
    assert theirs.json()["version"] == 1


async def test_only_staff_set_a_text_and_only_a_real_one(scene: Scene) -> None:
    body = {"text": "A client may not write the words it agrees to."}
    assert_problem(
        await scene.http.put(f"{TEXTS}/ach_debit", json=body, headers=scene.contact), 403
    )
    assert_problem(
        await scene.http.put(f"{TEXTS}/ach_debit", json={"text": "short"}, headers=scene.staff), 422
    )
    assert_problem(await scene.http.put(f"{TEXTS}/refunds", json=body, headers=scene.staff), 422)
    assert_problem(await scene.http.get(f"{TEXTS}/refunds", headers=scene.staff), 422)
    assert (await scene.http.get(f"{TEXTS}/ach_debit", headers=scene.contact)).json()[
        "version"
    ] == 1


async def test_a_bank_account_needs_consent_to_the_current_text(
    scene: Scene, clock: FrozenClock
) -> None:
    await set_text(scene, "ach_debit", ACH_TEXT)
    for body in (
        {},
        {"consent": consent(1)},
        {"consent": consent(3)},
        {"consent": {"accepted": False, "text_version": 2}},
    ):
        body_of = assert_problem(await add_bank(scene, body), 422)
        assert any(e["loc"][:2] == ["body", "consent"] for e in body_of["errors"]), body_of
    assert await count_rows(scene.factory, PaymentMethod, PaymentMethod.type == "ach") == 0
    assert await count_rows(scene.factory, ConsentRecord) == 0
    clock.advance(minutes=7)

    added = await add_bank(scene, {"consent": consent(2)})

    assert added.status_code == 201, added.text
    (record,) = await listed(scene, scene.contact)
    assert record == {
        "id": record["id"],
        "kind": "ach_debit",
        "user_id": str(scene.contact_user.id),
        "client_id": str(scene.client.id),
        "text_version": 2,
        "text_sha256": sha256(ACH_TEXT),
        "accepted_at": (START.replace(minute=7)).isoformat().replace("+00:00", "Z"),
        "ip_address": "127.0.0.1",
        "user_agent": BROWSER,
    }
    # A card needs none.
    assert (
        await scene.http.post(
            METHODS, json={"type": "card", "token": "tok_amex"}, headers=scene.contact
        )
    ).status_code == 201


async def test_turning_autopay_on_needs_consent_and_records_it_once(scene: Scene) -> None:
    for body in ({}, {"consent": consent(2)}):
        assert_problem(await turn_on_autopay(scene, body), 422)
    assert (await scene.http.get(AUTOPAY, headers=scene.contact)).json()["enabled"] is False

    assert (await turn_on_autopay(scene, {"consent": consent(1)})).status_code == 200
    # Changing the rules while it is on asks for nothing more and records nothing more.
    changed = await scene.http.put(
        AUTOPAY,
        json={"enabled": True, "rules": [rule(scene.card, scene.hosting, days=2)]},
        headers=scene.contact,
    )
    assert changed.status_code == 200, changed.text
    (record,) = await listed(scene, scene.contact, kind="autopay")
    assert (record["kind"], record["text_version"], record["text_sha256"]) == (
        "autopay",
        1,
        sha256(DEFAULT_TEXTS["autopay"]),
    )
    assert (record["user_agent"], record["user_id"]) == (BROWSER, str(scene.contact_user.id))
    # Off and on again is a new acceptance.
    assert (await scene.put_autopay({"enabled": False})).status_code == 200
    assert (await turn_on_autopay(scene, {"consent": consent(1)})).status_code == 200
    assert len(await listed(scene, scene.contact, kind="autopay")) == 2


async def test_records_keep_the_version_and_text_they_accepted(scene: Scene) -> None:
    assert (await add_bank(scene, {"consent": consent(1)})).status_code == 201
    before = await listed(scene, scene.contact)

    await set_text(scene, "ach_debit", ACH_TEXT)
    await set_text(scene, "ach_debit", ACH_TEXT + " Third.")

    assert await listed(scene, scene.contact) == before
    assert before[0]["text_sha256"] == sha256(DEFAULT_TEXTS["ach_debit"])


async def test_clients_list_their_own_staff_list_any_or_one(scene: Scene) -> None:
    neighbour = await sibling(scene)
    assert (await add_bank(scene, {"consent": consent(1)})).status_code == 201
    assert (await add_bank(neighbour, {"consent": consent(1)})).status_code == 201
    assert (await turn_on_autopay(scene, {"consent": consent(1)})).status_code == 200

    mine = await listed(scene, scene.contact)
    assert {(r["client_id"], r["kind"]) for r in mine} == {
        (str(scene.client.id), "ach_debit"),
        (str(scene.client.id), "autopay"),
    }
    # Naming another client changes nothing for a client user.
    assert await listed(scene, scene.contact, client_id=str(neighbour.client.id)) == mine
    assert len(await listed(scene, scene.staff)) == 3
    only = await listed(scene, scene.staff, client_id=str(neighbour.client.id))
    assert [r["client_id"] for r in only] == [str(neighbour.client.id)]
    assert len(await listed(scene, scene.staff, kind="autopay")) == 1
    other = await build_scene(scene.factory, scene.http, name="Other MSP")
    assert await listed(scene, other.staff) == []


async def test_staff_acting_for_a_client_record_their_own_user(scene: Scene) -> None:
    staff_body = {"client_id": str(scene.client.id), "consent": consent(1)}
    assert (await add_bank(scene, staff_body, headers=scene.staff)).status_code == 201
    assert (await turn_on_autopay(scene, {"consent": consent(1)}, staff=True)).status_code == 200
    assert_problem(
        await add_bank(scene, {"client_id": str(scene.client.id)}, headers=scene.staff), 422
    )

    records = await listed(scene, scene.staff, client_id=str(scene.client.id))
    assert sorted((r["kind"], r["user_id"], r["client_id"]) for r in records) == [
        ("ach_debit", str(scene.staff_user.id), str(scene.client.id)),
        ("autopay", str(scene.staff_user.id), str(scene.client.id)),
    ]
