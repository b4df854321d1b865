"""The invoice arithmetic under any sequence of payments, declines, gateway outages,
crashes, reconciliations and refunds (hypothesis), driven through the processors.

After every step: amount_paid is what succeeded payments brought in less what succeeded
refunds gave back; what is paid and held never exceeds the total (the lines' subtotal plus
their tax); the balance is the total less what is paid; the invoice is `paid` exactly when
its balance is 0; and the gateway moved money once per succeeded payment. Each step's
outcome is also checked against what the invoice allowed just before it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import today_in
from app.core.db import transaction
from app.core.principal import ClientPrincipal, Principal
from app.gateways.base import Charge
from app.gateways.fake import FakeGateway
from app.invoices.schemas import InvoiceOut
from app.models import Client, Invoice, Payment, PaymentAllocation, PaymentMethod, Refund, Tenant
from app.payments import refunds as refund_steps
from app.payments.charges import PaymentOrder
from app.payments.errors import (
    AmountTooLarge,
    InvoiceNotPayable,
    PaymentInProgress,
    RefundNotAllowed,
)
from app.payments.outcome import Outcome, Reserved
from app.payments.reconcile import reconcile
from app.payments.service import PaymentService

Outage = st.sampled_from(["timeout", "error", "lost_response"])
Amount = st.one_of(st.none(), st.integers(min_value=1, max_value=4_000))

operations = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), Amount),
        st.tuples(st.just("decline"), Amount),
        st.tuples(st.just("outage"), Amount, Outage),
        st.tuples(st.just("crash"), Amount),
        st.tuples(st.just("reconcile")),
        st.tuples(st.just("refund"), st.integers(0, 5), Amount),
        st.tuples(st.just("refund_outage"), st.integers(0, 5), Amount, Outage),
    ),
    min_size=1,
    max_size=14,
)


class Crashed(RuntimeError):
    pass


class CrashingService(PaymentService):
    """Dies after the gateway charged and before the outcome is recorded."""

    async def send(self, reserved: Reserved[Any]) -> Outcome[Any]:
        outcome = await super().send(reserved)
        if isinstance(outcome.result, Charge):
            raise Crashed(reserved.record.id)
        return outcome


@dataclass
class Books:
    tenant_id: uuid.UUID
    client_id: uuid.UUID
    invoice_id: uuid.UUID
    good: uuid.UUID
    declining: uuid.UUID
    total: int

    @property
    def staff(self) -> Principal:
        return Principal(tenant_id=self.tenant_id, kind="staff")

    @property
    def payer(self) -> ClientPrincipal:
        return ClientPrincipal(tenant_id=self.tenant_id, kind="system", client_id=self.client_id)

    def order(self, method: uuid.UUID, amount: int | None) -> PaymentOrder:
        return PaymentOrder(payment_method_id=method, invoice_ids=(self.invoice_id,), amount=amount)


async def new_books(
    sessionmaker: async_sessionmaker[AsyncSession], gateway: FakeGateway, total: int, tax: int
) -> Books:
    """A fresh tenant, client, two cards on file and an open invoice: one per example."""
    customer = await gateway.create_customer(name="Prop Corp", email=None, metadata={})
    attached = {
        token: await gateway.attach_method(token=token, customer_reference=customer)
        for token in ("tok_visa", "tok_chargeDeclined")
    }
    async with transaction(sessionmaker) as session:
        tenant = Tenant(name="Property MSP")
        session.add(tenant)
        await session.flush()
        client = Client(tenant_id=tenant.id, name="Prop Corp", gateway_customer_reference=customer)
        session.add(client)
        await session.flush()
        methods = {}
        for token, card in attached.items():
            method = PaymentMethod(
                tenant_id=tenant.id,
                client_id=client.id,
                type=card.type,
                brand=card.brand,
                last4=card.last4,
                exp_month=card.exp_month,
                exp_year=card.exp_year,
                fingerprint=card.fingerprint,
                gateway_reference=card.reference,
            )
            session.add(method)
            methods[token] = method
        today = today_in("UTC")
        invoice = Invoice(
            tenant_id=tenant.id,
            client_id=client.id,
            number="INV-000001",
            status="open",
            currency="USD",
            issued_on=today,
            due_date=today + timedelta(days=30),
            total=total,
            tax_total=tax,
            amount_paid=0,
            amount_reserved=0,
        )
        session.add(invoice)
        await session.flush()
        return Books(
            tenant_id=tenant.id,
            client_id=client.id,
            invoice_id=invoice.id,
            good=methods["tok_visa"].id,
            declining=methods["tok_chargeDeclined"].id,
            total=total,
        )


@dataclass
class State:
    invoice: Invoice
    payments: list[Payment]
    refunds: list[Refund]

    @property
    def available(self) -> int:
        return self.invoice.balance - self.invoice.amount_reserved

    def succeeded(self) -> list[Payment]:
        return [p for p in self.payments if p.status == "succeeded"]

    def refundable(self, payment: Payment) -> int:
        pending = sum(
            r.amount for r in self.refunds if r.payment_id == payment.id and r.status == "pending"
        )
        return payment.amount - payment.amount_refunded - pending


async def read(sessionmaker: async_sessionmaker[AsyncSession], books: Books) -> State:
    async with sessionmaker() as session:
        invoice = await session.get(Invoice, books.invoice_id)
        assert invoice is not None
        payments = list(
            (
                await session.execute(
                    select(Payment)
                    .join(PaymentAllocation, PaymentAllocation.payment_id == Payment.id)
                    .where(PaymentAllocation.invoice_id == books.invoice_id)
                    .order_by(Payment.created_at, Payment.id)
                )
            ).scalars()
        )
        refunds = list(
            (
                await session.execute(
                    select(Refund).where(Refund.payment_id.in_([p.id for p in payments]))
                )
            ).scalars()
        )
    return State(invoice, payments, refunds)


def check_invariants(state: State, gateway: FakeGateway, *, settled: bool = False) -> None:
    invoice, payments, refunds = state.invoice, state.payments, state.refunds
    succeeded = [p for p in payments if p.status == "succeeded"]
    pending = [p for p in payments if p.status == "pending"]
    refunded = [r for r in refunds if r.status == "succeeded"]

    assert invoice.amount_paid == sum(p.amount for p in succeeded) - sum(r.amount for r in refunded)
    assert invoice.amount_reserved == sum(p.amount for p in pending)
    assert invoice.amount_paid >= 0
    assert invoice.amount_paid + invoice.amount_reserved <= invoice.total
    shown = InvoiceOut.model_validate(invoice)
    assert shown.subtotal + shown.tax_total == shown.total == invoice.total
    assert 0 <= shown.tax_total <= shown.total
    balance = shown.balance
    assert balance == invoice.total - invoice.amount_paid
    assert (invoice.status == "paid") == (balance == 0)
    assert invoice.status in ("open", "paid")
    for payment in payments:
        mine = [r for r in refunded if r.payment_id == payment.id]
        assert payment.amount_refunded == sum(r.amount for r in mine) <= payment.amount

    charges = {c.idempotency_key: c for c in gateway.charges}
    assert len(charges) == len(gateway.charges)  # one charge per key, ever
    keys = {p.gateway_idempotency_key: p for p in payments}
    assert set(charges) <= set(keys)
    for payment in payments:
        charge = charges.get(payment.gateway_idempotency_key)
        if payment.status == "succeeded":
            assert charge is not None and charge.amount == payment.amount
        elif payment.status == "failed":
            assert charge is None
    gateway_refunds = {r.idempotency_key: r for r in gateway.refunds}
    for kept in refunds:
        if kept.status == "succeeded":
            assert gateway_refunds[kept.gateway_idempotency_key].amount == kept.amount
    if settled:
        assert pending == []
        assert [r for r in refunds if r.status == "pending"] == []
        assert len(gateway.charges) == len(succeeded)
        assert len(gateway.refunds) == len(refunded)


async def run_step(
    step: tuple[Any, ...],
    books: Books,
    before: State,
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: FakeGateway,
) -> None:
    kind = step[0]
    payments = PaymentService(sessionmaker, gateway)

    if kind == "reconcile":
        await reconcile(sessionmaker, gateway, older_than=timedelta(0))
        return

    if kind in ("pay", "decline", "outage", "crash"):
        amount: int | None = step[1]
        method = books.declining if kind == "decline" else books.good
        wanted = before.available if amount is None else amount
        if before.invoice.status != "open":
            expected: type[Exception] | None = InvoiceNotPayable
        elif amount is not None and amount > before.invoice.balance:
            expected = AmountTooLarge
        elif wanted <= 0 or wanted > before.available:
            expected = PaymentInProgress
        else:
            expected = None
        if kind == "outage" and expected is None:
            gateway.fail_next(mode=step[2])
        service = CrashingService(sessionmaker, gateway) if kind == "crash" else payments
        refused: Exception | None = None
        try:
            payment = (await service.pay(books.payer, books.order(method, amount))).payment
        except (Crashed, InvoiceNotPayable, AmountTooLarge, PaymentInProgress) as exc:
            refused = exc
        if isinstance(refused, Crashed):
            assert (kind, expected) == ("crash", None)
            return
        if refused is not None:
            assert type(refused) is expected, (refused, expected)
            return
        assert expected is None, expected
        assert payment.amount == wanted
        outcome = {"pay": "succeeded", "decline": "failed", "outage": "pending"}[kind]
        assert payment.status == outcome
        return

    # Refunds: of the n-th succeeded payment, when there is one.
    succeeded = before.succeeded()
    if not succeeded:
        return
    target = succeeded[step[1] % len(succeeded)]
    amount = step[2]
    left = before.refundable(target)
    if left <= 0:
        expected = RefundNotAllowed
    elif amount is not None and amount > left:
        expected = AmountTooLarge
    else:
        expected = None
    if kind == "refund_outage" and expected is None:
        gateway.fail_next(mode=step[3], operation="refund")
    try:
        async with transaction(sessionmaker) as session:
            reserved = await refund_steps.reserve(
                session, books.staff, target.id, amount, request_key=None
            )
        held = reserved.record
    except (RefundNotAllowed, AmountTooLarge) as exc:
        refused = exc
    else:
        refused = None
    if refused is not None:
        assert type(refused) is expected, (refused, expected)
        return
    assert expected is None, expected
    assert held.amount == (left if amount is None else amount)
    settled = await payments.settle_refund(books.staff, held.id)
    assert settled.status == ("pending" if kind == "refund_outage" else "succeeded")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    subtotal=st.integers(min_value=0, max_value=8_000),
    tax=st.integers(min_value=0, max_value=2_000),
    steps=operations,
)
async def test_any_sequence_keeps_the_invoice_arithmetic(
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: FakeGateway,
    subtotal: int,
    tax: int,
    steps: list[tuple[Any, ...]],
) -> None:
    assume(subtotal + tax > 0)
    gateway.reset()
    books = await new_books(sessionmaker, gateway, subtotal + tax, tax)
    state = await read(sessionmaker, books)
    check_invariants(state, gateway)
    for step in steps:
        await run_step(step, books, state, sessionmaker, gateway)
        state = await read(sessionmaker, books)
        check_invariants(state, gateway)

    # With the gateway healthy again, reconciliation settles everything, once.
    await reconcile(sessionmaker, gateway, older_than=timedelta(0))
    state = await read(sessionmaker, books)
    check_invariants(state, gateway, settled=True)
