"""The database itself refuses impossible money: whatever a bug or a race writes, an
invoice cannot be overpaid, go negative, or be `paid` with something still owed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import (
    Invoice,
    InvoiceLine,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    PlatformFee,
    Refund,
)
from tests.payments.helpers import Billing, add_method, draft_invoice, invoice_row, pay


async def write(
    sessionmaker: async_sessionmaker[AsyncSession], model: Any, id_: Any, **values: Any
) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(update(model).where(model.id == uuid.UUID(str(id_))).values(**values))


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"amount_paid": -1}, id="paid-negative"),
        pytest.param({"amount_reserved": -1}, id="reserved-negative"),
        pytest.param({"amount_reserved": 10_001}, id="held-beyond-total"),
        pytest.param({"amount_paid": 6_000, "amount_reserved": 4_001}, id="paid-plus-held-over"),
        pytest.param({"amount_paid": 10_001, "status": "paid"}, id="overpaid"),
        pytest.param({"amount_paid": 9_999, "status": "paid"}, id="paid-with-balance"),
        pytest.param({"amount_paid": 10_000}, id="open-with-no-balance"),
        pytest.param({"total": 9_999, "amount_paid": 10_000, "status": "paid"}, id="total-shrunk"),
        pytest.param({"total": -1}, id="total-negative"),
        pytest.param({"status": "late"}, id="unknown-status"),
        pytest.param({"status": "void", "amount_paid": 1}, id="void-with-money"),
    ],
)
async def test_an_impossible_invoice_is_refused_by_the_database(
    sessionmaker: async_sessionmaker[AsyncSession],
    invoice: dict[str, Any],
    values: dict[str, Any],
) -> None:
    with pytest.raises(IntegrityError):
        await write(sessionmaker, Invoice, invoice["id"], **values)
    row = await invoice_row(sessionmaker, invoice["id"])
    assert (row.status, row.total, row.amount_paid, row.amount_reserved) == ("open", 10_000, 0, 0)


async def test_a_draft_cannot_hold_payments(
    client: AsyncClient, billing: Billing, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    draft = await draft_invoice(client, billing.staff, billing.client_id, billing.category)
    with pytest.raises(IntegrityError):
        await write(sessionmaker, Invoice, draft["id"], amount_paid=1)


async def test_possible_invoices_are_accepted(
    sessionmaker: async_sessionmaker[AsyncSession], invoice: dict[str, Any]
) -> None:
    """The constraints refuse only the impossible: these are the states money moves through."""
    for values in (
        {"amount_reserved": 10_000},
        {"amount_reserved": 4_000, "amount_paid": 6_000},
        {"amount_reserved": 0, "amount_paid": 10_000, "status": "paid"},
        {"amount_paid": 3_000, "status": "open"},
        {"amount_paid": 0, "status": "void"},
    ):
        await write(sessionmaker, Invoice, invoice["id"], **values)
        row = await invoice_row(sessionmaker, invoice["id"])
        assert {k: getattr(row, k) for k in values} == values


@pytest.fixture
async def payment(client: AsyncClient, billing: Billing, invoice: dict[str, Any]) -> dict[str, Any]:
    response = await pay(client, billing.contact, invoice["id"], billing.card["id"], 4_000)
    assert response.status_code == 201, response.text
    paid: dict[str, Any] = response.json()
    return paid


@pytest.mark.parametrize(
    "values",
    [
        {"amount": 0},
        {"amount": -4_000},
        {"amount_refunded": 4_001},
        {"amount_refunded": -1},
        {"status": "refunded"},
        {"origin": "magic"},
    ],
)
async def test_an_impossible_payment_is_refused_by_the_database(
    sessionmaker: async_sessionmaker[AsyncSession],
    payment: dict[str, Any],
    values: dict[str, Any],
) -> None:
    with pytest.raises(IntegrityError):
        await write(sessionmaker, Payment, payment["id"], **values)


async def test_a_charge_key_and_a_request_key_are_used_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    payment: dict[str, Any],
) -> None:
    other = (await pay(client, billing.contact, invoice["id"], billing.card["id"], 1)).json()
    async with sessionmaker() as session:
        first = await session.get(Payment, uuid.UUID(payment["id"]))
        assert first is not None
        key = first.gateway_idempotency_key
    with pytest.raises(IntegrityError):
        await write(sessionmaker, Payment, other["id"], gateway_idempotency_key=key)
    await write(sessionmaker, Payment, payment["id"], request_key="user:x:k")
    with pytest.raises(IntegrityError):
        await write(sessionmaker, Payment, other["id"], request_key="user:x:k")


async def test_allocations_refunds_lines_and_fees_are_guarded_too(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    billing: Billing,
    invoice: dict[str, Any],
    payment: dict[str, Any],
) -> None:
    async with sessionmaker() as session:
        allocation = (
            await session.execute(
                PaymentAllocation.__table__.select().where(
                    PaymentAllocation.payment_id == uuid.UUID(payment["id"])
                )
            )
        ).one()
        line = (
            await session.execute(
                InvoiceLine.__table__.select().where(
                    InvoiceLine.invoice_id == uuid.UUID(invoice["id"])
                )
            )
        ).first()
        fee = (await session.execute(PlatformFee.__table__.select())).first()
    assert line is not None and fee is not None
    for model, id_, values in (
        (PaymentAllocation, allocation.id, {"amount": 0}),
        (InvoiceLine, line.id, {"amount": line.amount + 1}),
        (InvoiceLine, line.id, {"quantity": 0, "amount": 0}),
        (InvoiceLine, line.id, {"unit_amount": -1, "amount": -line.quantity}),
        (PlatformFee, fee.id, {"amount": 0}),
    ):
        with pytest.raises(IntegrityError):
            await write(sessionmaker, model, id_, **values)
    # A second allocation of one payment to the same invoice is refused.
    with pytest.raises(IntegrityError):
        async with sessionmaker() as session, session.begin():
            await session.execute(
                insert(PaymentAllocation).values(
                    id=uuid.uuid4(),
                    payment_id=uuid.UUID(payment["id"]),
                    invoice_id=uuid.UUID(invoice["id"]),
                    amount=1,
                )
            )
    # A refund of nothing is refused.
    with pytest.raises(IntegrityError):
        async with sessionmaker() as session, session.begin():
            session.add(
                Refund(
                    tenant_id=billing.world.tenant.id,
                    payment_id=uuid.UUID(payment["id"]),
                    amount=0,
                    status="pending",
                    gateway_idempotency_key=f"refund_{uuid.uuid4()}",
                )
            )


async def test_one_live_method_per_card_and_one_fee_per_card(
    sessionmaker: async_sessionmaker[AsyncSession], client: AsyncClient, billing: Billing
) -> None:
    spare = await add_method(client, billing.contact, "tok_mastercard")
    async with sessionmaker() as session:
        card = await session.get(PaymentMethod, uuid.UUID(billing.card["id"]))
        assert card is not None
    with pytest.raises(IntegrityError):
        await write(sessionmaker, PaymentMethod, spare["id"], fingerprint=card.fingerprint)
    with pytest.raises(IntegrityError):
        async with sessionmaker() as session, session.begin():
            session.add(
                PlatformFee(
                    tenant_id=card.tenant_id,
                    client_id=card.client_id,
                    payment_method_id=card.id,
                    fingerprint=card.fingerprint,
                    amount=50,
                    currency="USD",
                )
            )
    with pytest.raises(IntegrityError):
        await write(sessionmaker, PaymentMethod, spare["id"], type="crypto")
