"""The money path, shared by pay-now, the scheduler and reconciliation.

1. `reserve`: in one short transaction, lock the invoice, hold the amount on it with a
   conditional update (`amount_paid + amount_reserved + amount <= total`), and record a
   `pending` payment. Commit.
2. `settle`: call the gateway outside any transaction, with a key derived from the
   payment's id, so a repeat of the call can only ever find the same charge.
3. Record the outcome in a second transaction: allocate on success; release the hold and
   mark the payment `failed` on a decline; leave it `pending` when the gateway's answer is
   unknown. `reconcile_pending` settles those later by asking again with the same key.

A crash anywhere leaves either nothing, or a `pending` payment that reconciliation
finishes: never a lost payment, never a second charge.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.db import transaction
from app.core.errors import Unprocessable
from app.core.events import record_event
from app.core.idempotency import IdempotencyKeyReused
from app.gateways.base import Charge, GatewayDeclined, GatewayError, PaymentGateway
from app.invoices.errors import InvoiceNotFound
from app.models import Client, Invoice, Payment, PaymentAllocation, PaymentMethod
from app.payments.errors import AmountTooLarge, InvoiceNotPayable, PaymentInProgress

logger = logging.getLogger("billing_portal.payments")


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    tenant_id: uuid.UUID
    client_id: uuid.UUID
    invoice_id: uuid.UUID
    payment_method_id: uuid.UUID
    amount: int | None
    origin: str = "pay_now"
    request_key: str | None = None
    scheduled_payment_id: uuid.UUID | None = None
    gateway_key: str | None = None


class PaymentProcessor:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], gateway: PaymentGateway
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gateway = gateway

    async def pay(self, request: PaymentRequest) -> Payment:
        """Reserve, charge and record; returns the payment in its final (or pending) state."""
        payment = await self.reserve(request)
        return await self.settle(payment.id)

    async def reserve(self, request: PaymentRequest) -> Payment:
        async with transaction(self.sessionmaker) as session:
            if request.request_key is not None:
                existing = await _payment_by_request_key(session, request.request_key)
                if existing is not None:
                    # A retry of a request that got this far: resume it. A key reused for
                    # another request (its idempotency record expired) must not find it.
                    if not _same_request(existing, request):
                        raise IdempotencyKeyReused()
                    return existing
            return await reserve_in(session, request)

    async def settle(self, payment_id: uuid.UUID) -> Payment:
        async with transaction(self.sessionmaker) as session:
            payment = await session.get(Payment, payment_id)
            assert payment is not None
            if payment.status != "pending":
                return payment
            method = await session.get(PaymentMethod, payment.payment_method_id)
            client = await session.get(Client, payment.client_id)
            assert method is not None and client is not None
            method_reference, customer = method.gateway_reference, client.gateway_customer_reference
        try:
            charge = await self.gateway.charge(
                amount=payment.amount,
                currency=payment.currency,
                method_reference=method_reference,
                customer_reference=customer or "",
                idempotency_key=payment.gateway_idempotency_key,
                description=f"Payment {payment.id}",
                metadata={"payment_id": str(payment.id), "invoice_id": str(payment.invoice_id)},
            )
        except GatewayDeclined as declined:
            return await self._record_failure(payment.id, declined)
        except GatewayError as exc:
            logger.warning(
                "gateway outcome unknown; payment left pending",
                extra={"payment_id": str(payment.id), "error_code": exc.code},
            )
            return await self._record_unknown(payment.id)
        if charge.status != "succeeded":
            return await self._record_unknown(payment.id, charge)
        return await self._record_success(payment.id, charge)

    async def _record_success(self, payment_id: uuid.UUID, charge: Charge) -> Payment:
        async with transaction(self.sessionmaker) as session:
            payment = await _locked_payment(session, payment_id)
            if payment.status != "pending":
                return payment  # settled meanwhile by another settler, from the same charge
            amount = payment.amount
            await session.execute(
                update(Invoice)
                .where(Invoice.id == payment.invoice_id)
                .values(
                    amount_paid=Invoice.amount_paid + amount,
                    amount_reserved=Invoice.amount_reserved - amount,
                    status=case(
                        (Invoice.amount_paid + amount == Invoice.total, "paid"),
                        else_=Invoice.status,
                    ),
                    updated_at=utcnow(),
                )
            )
            payment.status = "succeeded"
            payment.gateway_charge_reference = charge.reference
            payment.settled_at = utcnow()
            payment.gateway_attempts += 1
            session.add(
                PaymentAllocation(
                    payment_id=payment.id, invoice_id=payment.invoice_id, amount=amount
                )
            )
            _event(session, payment, "payment.succeeded")
            await session.flush()
            return payment

    async def _record_failure(self, payment_id: uuid.UUID, declined: GatewayDeclined) -> Payment:
        async with transaction(self.sessionmaker) as session:
            payment = await _locked_payment(session, payment_id)
            if payment.status != "pending":
                return payment
            await _release(session, payment)
            payment.status = "failed"
            payment.failure_code = declined.code
            payment.failure_message = declined.message[:500]
            payment.gateway_charge_reference = declined.charge_reference
            payment.settled_at = utcnow()
            payment.gateway_attempts += 1
            _event(session, payment, "payment.failed", hard_decline=declined.hard)
            await session.flush()
            return payment

    async def _record_unknown(self, payment_id: uuid.UUID, charge: Charge | None = None) -> Payment:
        async with transaction(self.sessionmaker) as session:
            payment = await _locked_payment(session, payment_id)
            if payment.status == "pending":
                payment.gateway_attempts += 1
                if charge is not None:
                    payment.gateway_charge_reference = charge.reference
            return payment

    async def reconcile_pending(self, *, older_than: timedelta, limit: int = 100) -> list[Payment]:
        """Settle payments left `pending` (gateway timeouts, crashes) by asking again."""
        cutoff = utcnow() - older_than
        async with transaction(self.sessionmaker) as session:
            stmt = (
                select(Payment.id)
                .where(Payment.status == "pending", Payment.created_at <= cutoff)
                # Fewest tries first: payments the gateway keeps refusing to settle sink
                # below newer ones instead of taking every batch's places.
                .order_by(Payment.gateway_attempts, Payment.created_at)
                .limit(limit)
            )
            ids = list((await session.execute(stmt)).scalars())
        return [await self.settle(payment_id) for payment_id in ids]


async def reserve_in(session: AsyncSession, request: PaymentRequest) -> Payment:
    """Hold the amount on the invoice and record a pending payment (caller's transaction)."""
    invoice = (
        await session.execute(
            select(Invoice)
            .where(
                Invoice.id == request.invoice_id,
                Invoice.tenant_id == request.tenant_id,
                Invoice.client_id == request.client_id,
                Invoice.status != "draft",
            )
            .with_for_update()
        )
    ).scalar_one_or_none()
    if invoice is None:
        raise InvoiceNotFound()
    if invoice.status != "open":
        raise InvoiceNotPayable(f"The invoice is {invoice.status}; there is nothing to pay.")
    method = (
        await session.execute(
            select(PaymentMethod).where(
                PaymentMethod.id == request.payment_method_id,
                PaymentMethod.tenant_id == request.tenant_id,
                PaymentMethod.client_id == request.client_id,
                PaymentMethod.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if method is None:
        raise Unprocessable("No such payment method.", loc=("body", "payment_method_id"))
    available = invoice.balance - invoice.amount_reserved
    amount = request.amount if request.amount is not None else available
    if request.amount is not None and request.amount > invoice.balance:
        raise AmountTooLarge(
            f"The amount is more than the invoice's balance ({invoice.balance}).",
            loc=("body", "amount"),
        )
    if amount <= 0:
        raise PaymentInProgress()
    # The guard is in the statement itself, so it holds even where FOR UPDATE is a no-op.
    held = await session.execute(
        update(Invoice)
        .where(
            Invoice.id == invoice.id,
            Invoice.status == "open",
            Invoice.amount_paid + Invoice.amount_reserved + amount <= Invoice.total,
        )
        .values(amount_reserved=Invoice.amount_reserved + amount)
        .execution_options(synchronize_session=False)
    )
    if getattr(held, "rowcount", 0) != 1:
        raise PaymentInProgress()
    payment_id = uuid.uuid4()
    payment = Payment(
        id=payment_id,
        tenant_id=request.tenant_id,
        client_id=request.client_id,
        invoice_id=invoice.id,
        payment_method_id=method.id,
        amount=amount,
        currency=invoice.currency,
        status="pending",
        origin=request.origin,
        scheduled_payment_id=request.scheduled_payment_id,
        request_key=request.request_key,
        gateway_idempotency_key=request.gateway_key or f"payment_{payment_id}",
    )
    session.add(payment)
    _event(session, payment, "payment.created")
    await session.flush()
    return payment


async def _release(session: AsyncSession, payment: Payment) -> None:
    await session.execute(
        update(Invoice)
        .where(Invoice.id == payment.invoice_id)
        .values(amount_reserved=Invoice.amount_reserved - payment.amount)
    )


async def _payment_by_request_key(session: AsyncSession, key: str) -> Payment | None:
    stmt = select(Payment).where(Payment.request_key == key)
    return (await session.execute(stmt)).scalar_one_or_none()


def _same_request(payment: Payment, request: PaymentRequest) -> bool:
    return (
        payment.invoice_id == request.invoice_id
        and payment.payment_method_id == request.payment_method_id
        and request.amount in (None, payment.amount)
    )


async def _locked_payment(session: AsyncSession, payment_id: uuid.UUID) -> Payment:
    stmt = select(Payment).where(Payment.id == payment_id).with_for_update()
    return (await session.execute(stmt)).scalar_one()


def _event(session: AsyncSession, payment: Payment, type_: str, **data: object) -> None:
    record_event(
        session,
        tenant_id=payment.tenant_id,
        client_id=payment.client_id,
        type=type_,
        subject_type="payment",
        subject_id=payment.id,
        data={
            "amount": payment.amount,
            "currency": payment.currency,
            "invoice_id": str(payment.invoice_id),
            "origin": payment.origin,
            **({"failure_code": payment.failure_code} if payment.failure_code else {}),
            **data,
        },
    )
