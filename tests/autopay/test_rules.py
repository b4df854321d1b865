"""Ordered AutoPay rules under a frozen clock: the first enabled rule covering a line's
category pays it (disabled rules are skipped), a rule's cap (`max_invoice_total`) hands an
invoice over it to a later rule, `locked` is staff's, and the v1 fields read and write the
first rule while the others are kept."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.autopay.helpers import (
    autopay_plan,
    autopay_rows,
    get_autopay,
    put_rules,
    rule,
    set_rules,
)
from tests.factories import CONSENT, assert_problem
from tests.scheduling.helpers import AUTOPAY, TODAY, Scene, events_about, scheduled_for_invoice

DUE = TODAY + timedelta(days=10)


# -- order ----------------------------------------------------------------------------------


async def test_the_first_enabled_rule_covering_a_lines_category_pays_it(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    other = await scene.add_card("tok_mastercard")
    setting = await set_rules(
        scene,
        rule(scene.card, scene.hosting, days=1),
        rule(other, scene.hosting, scene.helpdesk, days=3),
    )
    first, second = (r["id"] for r in setting["rules"])
    assert [r["position"] for r in setting["rules"]] == [0, 1]

    invoice = await scene.invoice(
        (scene.hosting, 1_000), (scene.helpdesk, 500), (scene.hosting, 20), due=DUE
    )

    rows = await autopay_rows(sessionmaker, invoice["id"])
    assert sorted((str(r.rule_id), r.amount, r.scheduled_for) for r in rows) == sorted(
        [(first, 1_020, DUE - timedelta(days=1)), (second, 500, DUE - timedelta(days=3))]
    )
    assert {str(r.rule_id): str(r.payment_method_id) for r in rows} == {
        first: scene.card["id"],
        second: other["id"],
    }


async def test_a_disabled_rule_is_skipped_and_a_reordering_replans(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    other = await scene.add_card("tok_mastercard")
    invoice = await scene.invoice((scene.hosting, 1_000), (scene.helpdesk, 500), due=DUE)
    await set_rules(
        scene,
        rule(scene.card, scene.hosting, enabled=False),
        rule(other, scene.hosting, scene.helpdesk),
    )
    assert await autopay_plan(sessionmaker, invoice["id"]) == [(1_500, DUE, other["id"])]

    await set_rules(
        scene, rule(scene.card, scene.hosting), rule(other, scene.hosting, scene.helpdesk)
    )
    assert sorted(await autopay_plan(sessionmaker, invoice["id"])) == sorted(
        [(1_000, DUE, scene.card["id"]), (500, DUE, other["id"])]
    )

    await set_rules(
        scene, rule(other, scene.hosting, scene.helpdesk), rule(scene.card, scene.hosting)
    )
    assert await autopay_plan(sessionmaker, invoice["id"]) == [(1_500, DUE, other["id"])]
    # Every change was made on the waiting payments: none was charged or left behind.
    rows = await scheduled_for_invoice(sessionmaker, invoice["id"])
    assert {r.status for r in rows} <= {"scheduled", "canceled"}


async def test_turning_on_needs_an_enabled_rule(scene: Scene) -> None:
    response = await put_rules(scene, rule(scene.card, scene.hosting, enabled=False))
    assert_problem(response, 422)
    assert (await get_autopay(scene))["enabled"] is False


async def test_rules_dropped_from_the_list_leave_no_payment_behind(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Three rules each pay a part of an invoice; replacing them by one rule leaves exactly
    that rule's payment (the dropped rules' payments are canceled, however many they are)."""
    network = await scene.factory.category(scene.tenant, "Network")
    invoice = await scene.invoice(
        (scene.hosting, 1_000), (scene.helpdesk, 200), (network, 30), due=DUE
    )
    await set_rules(
        scene,
        rule(scene.card, scene.hosting),
        rule(scene.card, scene.helpdesk),
        rule(scene.card, network),
    )
    assert len(await autopay_rows(sessionmaker, invoice["id"])) == 3

    await set_rules(scene, rule(scene.card, scene.hosting))

    assert await autopay_plan(sessionmaker, invoice["id"]) == [(1_000, DUE, scene.card["id"])]


# -- the cap --------------------------------------------------------------------------------


async def test_an_invoice_over_a_rules_cap_goes_to_the_next_rule_covering_it(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ach = await scene.add_card("tok_ach")
    setting = await set_rules(
        scene,
        rule(scene.card, scene.hosting, cap=5_000),
        rule(ach, scene.hosting, days=2),
    )
    capped, fallback = (r["id"] for r in setting["rules"])
    assert setting["rules"][0]["max_invoice_total"] == 5_000
    small = await scene.invoice((scene.hosting, 5_000), due=DUE)  # at the cap: the card
    large = await scene.invoice((scene.hosting, 9_000), due=DUE)  # over it: the bank

    (row,) = await autopay_rows(sessionmaker, small["id"])
    assert (str(row.rule_id), str(row.payment_method_id), row.amount) == (
        capped,
        scene.card["id"],
        5_000,
    )
    (row,) = await autopay_rows(sessionmaker, large["id"])
    assert (str(row.rule_id), str(row.payment_method_id), row.amount) == (
        fallback,
        ach["id"],
        9_000,
    )
    # The preview and the payment's event say which rule pays, and why the first did not.
    item = (await scene.preview())[large["id"]]
    assert (item["state"], item["will_pay"]) == ("scheduled", True)
    assert [p["rule_id"] for p in item["payments"]] == [fallback]
    assert "Rule 1 does not pay it" in item["reason"], item["reason"]
    assert "cap of 5000" in item["reason"], item["reason"]
    assert "does not pay" not in (await scene.preview())[small["id"]]["reason"]
    (created,) = await events_about(sessionmaker, row.id)
    assert created.type == "scheduled_payment.created"
    assert created.data["rule_id"] == fallback
    assert created.details["over_cap_of"] == [capped]


async def test_over_every_cap_nothing_is_scheduled_and_the_preview_says_why(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await set_rules(scene, rule(scene.card, scene.hosting, scene.helpdesk, cap=10_000))
    # The cap is on the invoice's total, not on the lines a rule covers.
    invoice = await scene.invoice((scene.hosting, 6_000), (scene.helpdesk, 4_001), due=DUE)

    assert await scheduled_for_invoice(sessionmaker, invoice["id"]) == []
    item = (await scene.preview())[invoice["id"]]
    assert (item["state"], item["will_pay"], item["covered_amount"]) == ("over_cap", False, 0)
    assert "cap" in item["reason"]

    # Raising the cap replans the open invoice.
    await set_rules(scene, rule(scene.card, scene.hosting, scene.helpdesk, cap=10_001))
    assert await autopay_plan(sessionmaker, invoice["id"]) == [(10_001, DUE, scene.card["id"])]


async def test_a_line_over_the_cap_and_one_not_covered_are_told_apart(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await set_rules(scene, rule(scene.card, scene.hosting, cap=1_000))
    over = await scene.invoice((scene.hosting, 1_500), due=DUE)
    uncovered = await scene.invoice((scene.helpdesk, 500), due=DUE)

    partly = await scene.invoice((scene.hosting, 400), (scene.helpdesk, 500), due=DUE)

    preview = await scene.preview()
    assert preview[over["id"]]["state"] == "over_cap"
    assert preview[uncovered["id"]]["state"] == "not_covered"
    assert (preview[partly["id"]]["state"], preview[partly["id"]]["amount"]) == ("scheduled", 400)
    assert "Lines of 500 are left to pay" in preview[partly["id"]]["reason"]


async def test_a_cap_must_be_a_positive_amount(scene: Scene) -> None:
    for cap in (0, -5, 10**15):
        body = rule(scene.card, scene.hosting) | {"max_invoice_total": cap}
        assert_problem(await put_rules(scene, body), 422)


# -- the lock -------------------------------------------------------------------------------


async def test_staff_lock_autopay_and_the_client_cannot_change_it(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    invoice = await scene.invoice((scene.hosting, 700), due=DUE)
    body = {
        "enabled": True,
        "locked": True,
        "consent": CONSENT,
        "rules": [rule(scene.card, scene.hosting)],
    }
    locked = await scene.http.put(
        AUTOPAY, params={"client_id": str(scene.client.id)}, json=body, headers=scene.staff
    )
    assert locked.status_code == 200, locked.text
    assert (locked.json()["locked"], locked.json()["enabled"]) == (True, True)
    assert (await get_autopay(scene))["locked"] is True

    # The client can neither change the rules nor turn AutoPay off.
    other = await scene.add_card("tok_mastercard")
    assert_problem(await put_rules(scene, rule(other, scene.hosting)), 409, "autopay-locked")
    assert_problem(await put_rules(scene, enabled=False), 409, "autopay-locked")
    assert await autopay_plan(sessionmaker, invoice["id"]) == [(700, DUE, scene.card["id"])]

    # Staff may still change it while it stays locked ...
    changed = await put_rules(scene, rule(other, scene.hosting), as_staff=True)
    assert changed.status_code == 200, changed.text
    assert changed.json()["locked"] is True  # left out: kept
    assert await autopay_plan(sessionmaker, invoice["id"]) == [(700, DUE, other["id"])]

    # ... and unlock it, after which the client may change it again.
    unlock = {"enabled": True, "locked": False, "rules": [rule(other, scene.hosting)]}
    unlocked = await scene.http.put(
        AUTOPAY, params={"client_id": str(scene.client.id)}, json=unlock, headers=scene.staff
    )
    assert (unlocked.status_code, unlocked.json()["locked"]) == (200, False)
    assert (await put_rules(scene, rule(scene.card, scene.hosting, days=1))).status_code == 200
    assert await autopay_plan(sessionmaker, invoice["id"]) == [
        (700, DUE - timedelta(days=1), scene.card["id"])
    ]


async def test_a_client_cannot_lock_or_unlock(scene: Scene) -> None:
    for locked in (True, False):
        body = {"enabled": False, "locked": locked}
        response = await scene.http.put(AUTOPAY, json=body, headers=scene.contact)
        assert_problem(response, 403)
    assert (await get_autopay(scene))["locked"] is False


async def test_a_locked_setting_that_is_off_is_explained(scene: Scene) -> None:
    invoice = await scene.invoice((scene.hosting, 700), due=DUE)
    response = await scene.http.put(
        AUTOPAY,
        params={"client_id": str(scene.client.id)},
        json={"enabled": False, "locked": True},
        headers=scene.staff,
    )
    assert response.status_code == 200, response.text
    item = (await scene.preview())[invoice["id"]]
    assert (item["state"], item["will_pay"]) == ("locked", False)


# -- the v1 fields --------------------------------------------------------------------------


async def test_the_v1_fields_read_and_write_the_first_rule_and_keep_the_others(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    other = await scene.add_card("tok_mastercard")
    setting = await set_rules(
        scene,
        rule(scene.card, scene.hosting, days=4),
        rule(other, scene.helpdesk, on="day_of_month", days=31, cap=50_000),
    )
    first, second = setting["rules"]
    assert (setting["payment_method_id"], setting["service_category_ids"]) == (
        scene.card["id"],
        [str(scene.hosting.id)],
    )
    assert setting["days_before_due"] == 4

    v1 = await scene.put_autopay(
        {
            "enabled": True,
            "payment_method_id": other["id"],
            "service_category_ids": [str(scene.hosting.id), str(scene.helpdesk.id)],
            "days_before_due": 2,
        }
    )

    assert v1.status_code == 200, v1.text
    now = await get_autopay(scene)
    assert now == v1.json()
    assert (now["payment_method_id"], now["days_before_due"]) == (other["id"], 2)
    assert sorted(now["service_category_ids"]) == sorted(
        [str(scene.hosting.id), str(scene.helpdesk.id)]
    )
    new_first, kept = now["rules"]
    assert new_first["id"] == first["id"]
    assert new_first["run"] == {"on": "days_before_due", "days": 2}
    assert kept == second
    # The first rule now covers help desk too, so it pays those lines.
    invoice = await scene.invoice((scene.hosting, 100), (scene.helpdesk, 10), due=DUE)
    assert await autopay_plan(sessionmaker, invoice["id"]) == [
        (110, DUE - timedelta(days=2), other["id"])
    ]


async def test_rules_and_v1_fields_together_are_refused(scene: Scene) -> None:
    body = {
        "enabled": True,
        "consent": CONSENT,
        "rules": [rule(scene.card, scene.hosting)],
        "payment_method_id": scene.card["id"],
    }
    assert_problem(await scene.http.put(AUTOPAY, json=body, headers=scene.contact), 422)


async def test_a_first_rule_not_run_by_days_before_due_reads_as_zero_days(scene: Scene) -> None:
    setting = await set_rules(scene, rule(scene.card, scene.hosting, on="day_of_month", days=20))
    assert (setting["days_before_due"], setting["rules"][0]["run"]) == (
        0,
        {"on": "day_of_month", "days": 20},
    )
    assert date.fromisoformat(setting["updated_at"][:10]) == TODAY
