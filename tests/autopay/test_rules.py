"""Ordered AutoPay rules under a frozen clock: the first enabled rule covering a line's
category pays it (disabled rules are skipped), a rule's cap (`max_invoice_total`) hands an
invoice over it to a later rule, `locked` is staff's, and the v1 fields read and write the
first rule while the others are kept."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.autopay.helpers import (
    autopay_plan,
    autopay_rows,
    get_autopay,
    put_rules,
    rule,
    set_rules,
)
from tests.factories import assert_problem
from tests.scheduling.helpers import TODAY, Scene, scheduled_for_invoice

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
