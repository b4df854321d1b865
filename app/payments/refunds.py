"""The steps of a refund, run by `PaymentService` in its transactions: reserve it against the
payment, read back what the gateway call needs, record the outcome. A refund that succeeds
reopens the invoices it came from by its amount, the most recently paid part first."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.idempotency import IdempotencyKeyReused
from app.core.principal import Principal
from app.gateways.base import PaymentGateway
from app.gateways.base import Refund as GatewayRefund
from app.invoices.events import record_invoice_event
from app.invoices.repository import InvoiceRepository
from app.models import Payment, PaymentAllocation, Refund
from app.payments.errors import AmountTooLarge, RefundNotAllowed
from app.payments.events import record_payment_event, record_refund_event
from app.payments.outcome import GatewayCall, Outcome, Reserved
from app.payments.repository import PaymentRepository, RefundRepository
from app.payments.schemas import RefundOut


async def reserve(
    session: AsyncSession,
    principal: Principal,
    payment_id: uuid.UUID,
    amount: int | None,
    *,
    request_key: str | None,
) -> Reserved[GatewayRefund]:
    refunds = RefundRepository(session, principal)
    if request_key is not None:
        existing = await refunds.by_request_key(request_key)
        if existing is not None:
            # A retry resumes its refund; a key reused for another (its idempotency record
            # expired) must not find it.
            if existing.payment_id != payment_id or amount not in (None, existing.amount):
                raise IdempotencyKeyReused()
            return await prepare(session, principal, existing.id)
    payment = await PaymentRepository(session, principal).locked(payment_id)
    if payment.status != "succeeded":
        raise RefundNotAllowed(
            f"Only a succeeded payment can be refunded; this one is {payment.status}."
        )
    refundable = payment.amount - payment.amount_refunded - await refunds.pending_total(payment.id)
    if refundable <= 0:
        raise RefundNotAllowed("Nothing is left to refund on this payment.")
    wanted = refundable if amount is None else amount
    if wanted > refundable:
        raise AmountTooLarge(
            f"At most {refundable} is left to refund on this payment.", loc=("body", "amount")
        )
    refund_id = uuid.uuid4()
    refund = Refund(
        id=refund_id,
        tenant_id=payment.tenant_id,
        payment_id=payment.id,
        amount=wanted,
        status="pending",
        request_key=request_key,
        gateway_idempotency_key=f"refund_{refund_id}",
        created_by_id=principal.user_id,
    )
    refunds.add(refund)
    await session.flush()
    return Reserved(refund, _refund_call(refund, payment), operation="refund")


async def prepare(
    session: AsyncSession, principal: Principal, refund_id: uuid.UUID
) -> Reserved[GatewayRefund]:
    refund = await RefundRepository(session, principal).get(refund_id)
    assert refund is not None, "a refund being settled exists"
    if refund.status != "pending":
        return Reserved(refund)
    payment = await PaymentRepository(session, principal).get_or_404(refund.payment_id)
    return Reserved(refund, _refund_call(refund, payment), operation="refund")


async def record(
    session: AsyncSession,
    principal: Principal,
    refund_id: uuid.UUID,
    outcome: Outcome[GatewayRefund],
) -> Refund:
    refund = await RefundRepository(session, principal).locked(refund_id)
    if refund.status != "pending":
        return refund
    payments = PaymentRepository(session, principal)
    payment = await payments.locked(refund.payment_id)
    if outcome.result is not None:
        payment.amount_refunded += refund.amount
        # The money is back with the client, so the invoices owe it again.
        applied = [a for a in await payments.allocations([payment.id]) if a.status == "applied"]
        invoices = InvoiceRepository(session, principal)
        reopened = sorted(_spread(applied, refund.amount), key=_by_invoice)
        for allocation, part in reopened:
            allocation.amount_refunded += part
            await invoices.reopen(allocation.invoice_id, part)
        refund.status = "succeeded"
        refund.gateway_reference = outcome.result.reference
        refund.settled_at = utcnow()
        await record_payment_event(
            session, principal, payment, "payment.refunded", refund=_refund_shown(refund)
        )
        for allocation, part in reopened:
            invoice = await invoices.reload(allocation.invoice_id)
            details = {"reopened_by_refund": str(refund.id), "amount": part}
            await record_invoice_event(session, principal, invoice, "invoice.updated", details)
    elif outcome.declined is not None:
        refund.status = "failed"
        refund.failure_code = outcome.declined.code
        refund.settled_at = utcnow()
        record_refund_event(session, refund, payment, "refund.failed")
    await session.flush()
    return refund


def _spread(applied: list[PaymentAllocation], amount: int) -> list[tuple[PaymentAllocation, int]]:
    """Which allocations a refund takes back: the last paid first, each up to what is left."""
    parts = []
    for allocation in sorted(applied, key=lambda a: a.position, reverse=True):
        part = min(amount, allocation.amount - allocation.amount_refunded)
        if part > 0:
            parts.append((allocation, part))
            amount -= part
    assert amount == 0, "a refund never exceeds what its payment paid"
    return parts


def _by_invoice(part: tuple[PaymentAllocation, int]) -> uuid.UUID:
    return part[0].invoice_id


def _refund_call(refund: Refund, payment: Payment) -> GatewayCall[GatewayRefund]:
    charge_reference = payment.gateway_charge_reference
    assert charge_reference is not None, "a succeeded payment has its gateway charge"
    amount, key = refund.amount, refund.gateway_idempotency_key

    async def call(gateway: PaymentGateway) -> GatewayRefund:
        return await gateway.refund(
            charge_reference=charge_reference, amount=amount, idempotency_key=key
        )

    return call


def _refund_shown(refund: Refund) -> dict[str, object]:
    return RefundOut.model_validate(refund).model_dump(mode="json")
