"""Payments of several invoices for random invoices, part-payments, choices and amounts
(hypothesis, deterministic): the allocations sum to the charge, go oldest due date first,
each but the last pays its invoice in full, and none exceeds what its invoice owed."""

from __future__ import annotations

import uuid

from httpx import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.fake import FakeGateway
from tests.factories import Factory, assert_problem
from tests.payments.helpers import billing_world, due_in, open_invoice, pay
from tests.payments.several import allocations, assert_allocated_books, pay_several

INVOICES = st.lists(
    st.tuples(
        st.integers(100, 5_000),  # total
        st.sampled_from([-10, 0, 0, 7, 30]),  # due in days: ties happen
        st.floats(0, 0.9),  # share paid before
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=20,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(specs=INVOICES, choice=st.data())
async def test_allocations_sum_to_the_charge_oldest_first_never_over_a_balance(
    factory: Factory,
    client: AsyncClient,
    gateway: FakeGateway,
    sessionmaker: async_sessionmaker[AsyncSession],
    specs: list[tuple[int, int, float]],
    choice: st.DataObject,
) -> None:
    billing = await billing_world(factory, client, f"MSP {uuid.uuid4().hex[:6]}")
    invoices = []
    for total, days, share in specs:
        invoice = await open_invoice(
            client,
            billing.staff,
            billing.client_id,
            billing.category,
            (1, total),
            due_date=due_in(days),
        )
        if int(total * share):
            paid = await pay(
                client, billing.contact, invoice["id"], billing.card["id"], int(total * share)
            )
            assert paid.status_code == 201, paid.text
        invoices.append(invoice | {"owed": total - int(total * share)})
    named = choice.draw(st.none() | st.lists(st.sampled_from(invoices), min_size=1), "named")
    chosen = invoices if named is None else list({i["id"]: i for i in named}.values())
    owed = sum(i["owed"] for i in chosen)
    amount = choice.draw(st.none() | st.integers(1, owed + 500), "amount")
    calls = gateway.charge_calls

    response = await pay_several(
        client,
        billing.contact,
        billing.card["id"],
        None if named is None else [i["id"] for i in named],
        amount,
    )

    if amount is not None and amount > owed:
        assert_problem(response, 422, "amount-too-large")
        assert gateway.charge_calls == calls
        return
    assert response.status_code == 201, response.text
    payment = response.json()
    parts = allocations(payment)
    assert (
        sum(part for _, part in parts) == payment["amount"] == (owed if amount is None else amount)
    )
    # Oldest due first (created first among equals), each in full but the last.
    order = sorted(chosen, key=lambda i: (i["due_date"], i["number"]))
    assert [invoice_id for invoice_id, _ in parts] == [i["id"] for i in order[: len(parts)]]
    for (_, part), invoice in zip(parts, order, strict=False):
        assert 0 < part <= invoice["owed"]
    assert all(part == i["owed"] for (_, part), i in zip(parts[:-1], order, strict=False))
    # The books agree for every invoice, paid by this payment or not, and the payment was
    # charged once for its amount.
    await assert_allocated_books(sessionmaker, gateway, *(i["id"] for i in invoices))
    assert gateway.charge_calls == calls + 1
