"""The steps of a charge, run by `PaymentService` in its transactions: reserve a payment over
one or more invoices, read back what the gateway call needs, record the gateway's outcome.

A payment pays its invoices through allocations, one per invoice, in the order given (oldest
due first when it pays several): each allocation holds its part on its invoice while the
payment is pending, is applied when it succeeds and released when it is declined.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.errors import Unprocessable
from app.core.idempotency import IdempotencyKeyReused
from app.core.money import within_maximum
from app.core.principal import ClientPrincipal, Principal
from app.gateways.base import Charge, PaymentGateway
from app.invoices.errors import InvoiceNotFound
from app.invoices.events import record_invoice_event
from app.invoices.repository import InvoiceRepository
from app.models import Invoice, Payment, PaymentAllocation
from app.payment_methods.repository import PaymentMethodRepository
from app.payments.errors import (
    AmountTooLarge,
    InvoiceNotPayable,
    NothingToPay,
    PaymentInProgress,
    PaymentNotFound,
)
from app.payments.events import record_payment_event
from app.payments.outcome import GatewayCall, Outcome, Reserved
from app.payments.presenter import present_payment
from app.payments.repository import PaymentRepository


@dataclass(frozen=True, slots=True)
class PaymentOrder:
    """What to charge: a client's payment method, over one or more of its invoices."""

    payment_method_id: uuid.UUID
    # In the order they are to be paid: the first gets its part first.
    invoice_ids: tuple[uuid.UUID, ...]
    # None: what the invoices still owe, less what other payments in flight hold.
    amount: int | None = None
    # True: `amount` is a ceiling, not a demand: charge what is free up to it (the runner's
    # scheduled amount after the invoice was partly paid meanwhile), never more than owed.
    up_to: bool = False
    origin: str = "pay_now"
    # The caller's Idempotency-Key, scoped to the caller: a retry resumes this payment.
    request_key: str | None = None
    # True: the caller knows no payment has `request_key` yet (a scheduled payment that names
    # no payment of its own), so it is not looked for.
    request_key_unused: bool = False
    scheduled_payment_id: uuid.UUID | None = None
    # Sent to the gateway; `payment_<id>` unless the caller derives its own (the runner
    # derives one per attempt of a scheduled payment).
    gateway_key: str | None = None


async def reserve(
    session: AsyncSession, principal: ClientPrincipal, order: PaymentOrder
) -> Reserved[Charge]:
    payments = PaymentRepository(session, principal)
    if order.request_key is not None and not order.request_key_unused:
        existing = await payments.by_request_key(order.request_key)
        if existing is not None:
            # A retry of a request that got this far: resume it. A key reused for another
            # request (its idempotency record expired) must not find it.
            if not await _same_order(payments, existing, order):
                raise IdempotencyKeyReused()
            return await prepare(session, principal, existing.id)
    invoices = await _payable_invoices(session, principal, order.invoice_ids)
    found = await PaymentMethodRepository(session, principal).live_with_customer(
        order.payment_method_id, client_id=principal.client_id
    )
    if found is None:
        raise Unprocessable("No such payment method.", loc=("body", "payment_method_id"))
    method, customer = found
    parts = _split(invoices, order.amount, up_to=order.up_to)
    repo = InvoiceRepository(session, principal)
    for invoice, part in sorted(parts, key=lambda p: p[0].id):
        if not await repo.hold(invoice.id, part):
            raise PaymentInProgress()
    payment_id = uuid.uuid4()
    payment = Payment(
        id=payment_id,
        tenant_id=principal.tenant_id,
        client_id=principal.client_id,
        payment_method_id=method.id,
        amount=sum(part for _, part in parts),
        currency=invoices[0].currency,
        status="pending",
        origin=order.origin,
        scheduled_payment_id=order.scheduled_payment_id,
        request_key=order.request_key,
        gateway_idempotency_key=order.gateway_key or f"payment_{payment_id}",
        amount_refunded=0,
        gateway_attempts=0,
    )
    payments.add(payment)
    await session.flush()
    allocations = [
        PaymentAllocation(
            tenant_id=principal.tenant_id,
            payment_id=payment.id,
            invoice_id=invoice.id,
            position=position,
            amount=part,
            status="held",
            amount_refunded=0,
        )
        for position, (invoice, part) in enumerate(parts)
    ]
    payments.add_allocations(allocations)
    numbers = {invoice.id: invoice.number for invoice in invoices}
    shown = present_payment(payment, method, allocations, numbers)
    await record_payment_event(session, principal, payment, "payment.pending", shown=shown)
    await session.flush()
    return Reserved(payment, _charge_call(payment, method.gateway_reference, customer))


async def prepare(
    session: AsyncSession, principal: Principal, payment_id: uuid.UUID
) -> Reserved[Charge]:
    """A payment and, while it is pending, the call that settles it (with the same key)."""
    found = await PaymentRepository(session, principal).with_method_and_customer(payment_id)
    if found is None:
        raise PaymentNotFound()
    payment, method, customer = found
    if payment.status != "pending":
        return Reserved(payment)
    return Reserved(payment, _charge_call(payment, method.gateway_reference, customer))


async def record(
    session: AsyncSession, principal: Principal, payment_id: uuid.UUID, outcome: Outcome[Charge]
) -> Payment:
    payments = PaymentRepository(session, principal)
    payment, method, allocations = await payments.locked_with_allocations(payment_id)
    if payment.status != "pending":
        return payment  # settled meanwhile by another settler, from the same charge
    held = [a for a in allocations if a.status == "held"]
    invoices = InvoiceRepository(session, principal)
    charge = outcome.result
    payment.gateway_attempts += 1
    numbers: dict[uuid.UUID, str | None] = {}
    if charge is not None and charge.status == "succeeded":
        paid = []
        for allocation in sorted(held, key=lambda a: a.invoice_id):
            invoice, timezone = await invoices.apply_held(allocation.invoice_id, allocation.amount)
            numbers[invoice.id] = invoice.number
            if invoice.status == "paid":
                paid.append((invoice, timezone))
            allocation.status = "applied"
        payment.status = "succeeded"
        payment.gateway_charge_reference = charge.reference
        payment.settled_at = utcnow()
        shown = present_payment(payment, method, allocations, numbers)
        await record_payment_event(session, principal, payment, "payment.succeeded", shown=shown)
        for invoice, timezone in paid:
            await record_invoice_event(
                session, principal, invoice, "invoice.paid", timezone=timezone
            )
    elif outcome.declined is not None:
        declined = outcome.declined
        for allocation in sorted(held, key=lambda a: a.invoice_id):
            await invoices.release_held(allocation.invoice_id, allocation.amount)
            allocation.status = "released"
        payment.status = "failed"
        payment.failure_code = declined.code
        payment.failure_message = declined.message[:500]
        payment.gateway_charge_reference = declined.charge_reference
        payment.settled_at = utcnow()
        shown = present_payment(payment, method, allocations, numbers)
        await record_payment_event(
            session, principal, payment, "payment.failed", shown=shown, hard_decline=declined.hard
        )
    elif charge is not None:
        # The gateway took it but has not finished (a charge still `pending` there).
        payment.gateway_charge_reference = charge.reference
    await session.flush()
    return payment


def _charge_call(
    payment: Payment, method_reference: str, customer: str | None
) -> GatewayCall[Charge]:
    # Copied out of the row: the call runs after its transaction is gone.
    amount, currency, key = payment.amount, payment.currency, payment.gateway_idempotency_key
    metadata = {"payment_id": str(payment.id)}

    async def call(gateway: PaymentGateway) -> Charge:
        return await gateway.charge(
            amount=amount,
            currency=currency,
            method_reference=method_reference,
            customer_reference=customer or "",
            idempotency_key=key,
            description=f"Payment {payment.id}",
            metadata=metadata,
        )

    return call


async def _payable_invoices(
    session: AsyncSession, principal: ClientPrincipal, invoice_ids: Sequence[uuid.UUID]
) -> list[Invoice]:
    """The invoices, in the order asked for, each of them the client's own and open."""
    repo = InvoiceRepository(session, principal)
    locked = {i.id: i for i in await repo.lock_for_payment(invoice_ids)}
    invoices = []
    for invoice_id in invoice_ids:
        invoice = locked.get(invoice_id)
        if invoice is None:
            raise InvoiceNotFound()
        if invoice.status != "open":
            raise InvoiceNotPayable(invoice.status)
        invoices.append(invoice)
    return invoices


def _split(
    invoices: Sequence[Invoice], amount: int | None, *, up_to: bool
) -> list[tuple[Invoice, int]]:
    """Each invoice's part of `amount`, in order: each takes what it still owes (less what
    payments in flight hold) until the amount is used up."""
    owed = sum(i.balance for i in invoices)
    available = [i.balance - i.amount_reserved for i in invoices]
    if amount is not None and amount > owed and not up_to:
        raise AmountTooLarge(
            f"The amount is more than the invoice's balance ({owed}).", loc=("body", "amount")
        )
    free = sum(available)
    if amount is None:
        wanted = free
    elif up_to:
        wanted = run_time_amount(amount, owed, sum(i.amount_reserved for i in invoices))
    else:
        wanted = amount
    if wanted <= 0 or wanted > sum(available):
        raise PaymentInProgress()
    # Several invoices, each within the maximum, can owe more together than one charge may be.
    within_maximum(wanted, what="One payment", loc=("body", "amount"))
    parts = []
    for invoice, free in zip(invoices, available, strict=True):
        part = min(free, wanted)
        if part > 0:
            parts.append((invoice, part))
            wanted -= part
    return parts


async def _same_order(payments: PaymentRepository, payment: Payment, order: PaymentOrder) -> bool:
    # An invoice asked for may have got no part (nothing left on it): a subset, not equality.
    paid = {a.invoice_id for a in await payments.allocations([payment.id])}
    return (
        paid <= set(order.invoice_ids)
        and payment.payment_method_id == order.payment_method_id
        and (
            order.amount in (None, payment.amount)
            or (order.up_to and payment.amount <= order.amount)
        )
    )


def run_time_amount(ceiling: int, balance: int, reserved: int) -> int:
    """What a payment with a ceiling may charge: never more than the invoices still owe, less
    what other payments in flight already hold."""
    return max(0, min(ceiling, balance - reserved))


async def oldest_first(
    session: AsyncSession, acting: ClientPrincipal, invoice_ids: Sequence[uuid.UUID] | None
) -> tuple[uuid.UUID, ...]:
    """The invoices a payment of several pays, in the order it pays them (oldest due date
    first): the ones named (each the client's own and open), or every open one."""
    wanted = list(dict.fromkeys(invoice_ids)) if invoice_ids is not None else None
    found = await InvoiceRepository(session, acting).of_client(acting.client_id, wanted)
    if wanted is not None:
        known = {i.id: i for i in found}
        for index, invoice_id in enumerate(wanted):
            invoice = known.get(invoice_id)
            if invoice is None:
                raise Unprocessable("No such invoice.", loc=("body", "invoice_ids", index))
            if invoice.status != "open":
                raise Unprocessable(
                    f"The invoice is {invoice.status}; only open invoices can be paid.",
                    loc=("body", "invoice_ids", index),
                )
    if not found:
        raise NothingToPay()
    if len({i.currency for i in found}) > 1:
        raise Unprocessable(
            "One payment pays invoices of one currency: name the invoices of one currency.",
            loc=("body", "invoice_ids"),
        )
    return tuple(i.id for i in found)
