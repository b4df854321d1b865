"""The planner's promises through the API for a few random cases (hypothesis, deterministic):
after rules are set, and set again, every invoice's lines are paid by at most one rule each
(the first enabled one covering them under its cap), and an invoice's scheduled payments,
the client's own and AutoPay's, never add up to more than its balance."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.autopay.planner import Line, Rule
from app.core.clock import FrozenClock
from tests.autopay.helpers import WAITING, rule, set_rules
from tests.autopay.test_planner_property import first_payer
from tests.factories import Factory
from tests.scheduling.helpers import TODAY, Scene, build_scene, scheduled_for_invoice

RuleSpec = tuple[bool, int, frozenset[int], int | None]
RULES = st.lists(
    st.tuples(
        st.booleans(),  # enabled (the first one always is)
        st.integers(0, 1),  # which card
        st.frozensets(st.integers(0, 1), min_size=1),  # hosting, help desk
        st.none() | st.sampled_from([1_000, 2_500, 4_000]),  # cap
    ),
    min_size=1,
    max_size=3,
)
INVOICES = st.lists(
    st.tuples(
        st.lists(
            st.tuples(st.integers(0, 1), st.sampled_from([500, 1_000, 1_500])),
            min_size=1,
            max_size=3,
        ),
        st.floats(0, 1),  # share of the balance the client schedules themselves first
    ),
    min_size=1,
    max_size=3,
)


def as_rules(
    scene: Scene, methods: list[dict[str, Any]], specs: list[RuleSpec]
) -> list[dict[str, Any]]:
    categories = [scene.hosting, scene.helpdesk]
    return [
        rule(methods[m], *(categories[c] for c in sorted(cs)), cap=cap, enabled=enabled or n == 0)
        for n, (enabled, m, cs, cap) in enumerate(specs)
    ]


async def check(
    sessionmaker: async_sessionmaker[AsyncSession],
    setting: dict[str, Any],
    invoices: list[tuple[dict[str, Any], int]],
) -> None:
    rules = [
        Rule(
            id=uuid.UUID(r["id"]),
            enabled=r["enabled"],
            payment_method_id=uuid.UUID(r["payment_method_id"]),
            category_ids=frozenset(uuid.UUID(c) for c in r["service_category_ids"]),
            run_on=r["run"]["on"],
            run_days=r["run"]["days"],
            max_invoice_total=r["max_invoice_total"],
        )
        for r in setting["rules"]
    ]
    for invoice, own in invoices:
        lines = [Line(uuid.UUID(x["service_category_id"]), x["amount"]) for x in invoice["lines"]]
        rows = [
            r
            for r in await scheduled_for_invoice(sessionmaker, invoice["id"])
            if r.status in WAITING
        ]
        assert sum(r.amount for r in rows) <= invoice["total"]
        assert sum(r.amount for r in rows if r.origin == "manual") == own
        owed: dict[uuid.UUID, int] = defaultdict(int)
        for line in lines:
            payer = first_payer(rules, line, invoice["total"])
            if payer is not None:
                owed[payer.id] += line.amount
        room = invoice["total"] - own
        autopay = [r for r in rows if r.origin == "autopay"]
        assert len({r.rule_id for r in autopay}) == len(autopay)  # one payment per rule
        for r in rules:
            wanted = min(owed[r.id], room)
            room -= wanted
            mine = [p for p in autopay if p.rule_id == r.id]
            assert [(p.amount, p.payment_method_id) for p in mine] == (
                [(wanted, r.payment_method_id)] if wanted else []
            )


@settings(
    max_examples=5,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(first=RULES, then=RULES, invoices=INVOICES)
async def test_rules_set_and_changed_through_the_api_keep_the_promises(
    factory: Factory,
    client: AsyncClient,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
    first: list[RuleSpec],
    then: list[RuleSpec],
    invoices: list[tuple[list[tuple[int, int]], float]],
) -> None:
    scene = await build_scene(factory, client, name=f"MSP {uuid.uuid4().hex[:6]}")
    methods = [scene.card, await scene.add_card("tok_mastercard")]
    categories = [scene.hosting, scene.helpdesk]
    made = []
    for lines, share in invoices:
        invoice = await scene.invoice(
            *((categories[c], amount) for c, amount in lines), due=TODAY + timedelta(days=9)
        )
        own = int(invoice["total"] * share)
        if own:
            await scene.scheduled(invoice["id"], own, TODAY + timedelta(days=5))
        made.append((invoice, own))

    for specs in (first, then):
        setting = await set_rules(scene, *as_rules(scene, methods, specs))
        await check(sessionmaker, setting, made)
