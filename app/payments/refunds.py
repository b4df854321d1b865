"""Refunds: held against the payment, sent to the gateway outside any transaction with a
key derived from the refund's id, then recorded; the invoice's balance reopens by the
amount. A refund whose outcome is unknown stays `pending` until reconciled."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.db import transaction
from app.core.events import record_event
from app.core.idempotency import IdempotencyKeyReused
from app.core.principal import Principal
from app.gateways.base import GatewayDeclined, GatewayError, PaymentGateway
from app.gateways.base import Refund as GatewayRefund
from app.models import Invoice, Payment, Refund
from app.payments.errors import AmountTooLarge, PaymentNotFound, RefundNotAllowed

logger = logging.getLogger("billing_portal.refunds")


class RefundProcessor:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], gateway: PaymentGateway
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gateway = gateway

    async def reserve(
        self,
        principal: Principal,
        payment_id: uuid.UUID,
        amount: int | None,
        *,
        request_key: str | None,
    ) -> Refund:
        async with transaction(self.sessionmaker) as session:
            if request_key is not None:
                stmt = select(Refund).where(Refund.request_key == request_key)
                existing = (await session.execute(stmt)).scalar_one_or_none()
                if existing is not None:
                    # A retry resumes its refund; a key reused for another (its idempotency
                    # record expired) must not find it.
                    if existing.payment_id != payment_id or amount not in (None, existing.amount):
                        raise IdempotencyKeyReused()
                    return existing
            payment = (
                await session.execute(
                    select(Payment)
                    .where(Payment.id == payment_id, Payment.tenant_id == principal.tenant_id)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if payment is None:
                raise PaymentNotFound()
            if payment.status != "succeeded":
                raise RefundNotAllowed(
                    f"Only a succeeded payment can be refunded; this one is {payment.status}."
                )
            held = await _pending_total(session, payment.id)
            refundable = payment.amount - payment.amount_refunded - held
            wanted = refundable if amount is None else amount
            if refundable <= 0:
                raise RefundNotAllowed("Nothing is left to refund on this payment.")
            if wanted > refundable:
                raise AmountTooLarge(
                    f"At most {refundable} is left to refund on this payment.",
                    loc=("body", "amount"),
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
            session.add(refund)
            await session.flush()
            return refund

    async def settle(self, refund_id: uuid.UUID) -> Refund:
        async with transaction(self.sessionmaker) as session:
            refund = await session.get(Refund, refund_id)
            assert refund is not None
            if refund.status != "pending":
                return refund
            payment = await session.get(Payment, refund.payment_id)
            assert payment is not None and payment.gateway_charge_reference is not None
            charge_reference = payment.gateway_charge_reference
        try:
            result = await self.gateway.refund(
                charge_reference=charge_reference,
                amount=refund.amount,
                idempotency_key=refund.gateway_idempotency_key,
            )
        except GatewayDeclined as declined:
            return await self._record_failure(refund.id, declined)
        except GatewayError as exc:
            logger.warning(
                "gateway outcome unknown; refund left pending",
                extra={"refund_id": str(refund.id), "error_code": exc.code},
            )
            return refund
        return await self._record_success(refund.id, result)

    async def _record_success(self, refund_id: uuid.UUID, result: GatewayRefund) -> Refund:
        async with transaction(self.sessionmaker) as session:
            refund = await _locked(session, refund_id)
            if refund.status != "pending":
                return refund
            payment = (
                await session.execute(
                    select(Payment).where(Payment.id == refund.payment_id).with_for_update()
                )
            ).scalar_one()
            payment.amount_refunded += refund.amount
            # The money is back with the client, so the invoice owes it again.
            await session.execute(
                update(Invoice)
                .where(Invoice.id == payment.invoice_id)
                .values(
                    amount_paid=Invoice.amount_paid - refund.amount,
                    status="open",
                    updated_at=utcnow(),
                )
            )
            refund.status = "succeeded"
            refund.gateway_reference = result.reference
            refund.settled_at = utcnow()
            _event(session, refund, payment, "refund.succeeded")
            await session.flush()
            return refund

    async def _record_failure(self, refund_id: uuid.UUID, declined: GatewayDeclined) -> Refund:
        async with transaction(self.sessionmaker) as session:
            refund = await _locked(session, refund_id)
            if refund.status != "pending":
                return refund
            refund.status = "failed"
            refund.failure_code = declined.code
            refund.settled_at = utcnow()
            payment = await session.get(Payment, refund.payment_id)
            assert payment is not None
            _event(session, refund, payment, "refund.failed")
            await session.flush()
            return refund

    async def reconcile_pending(self, *, older_than: timedelta, limit: int = 100) -> list[Refund]:
        cutoff = utcnow() - older_than
        async with transaction(self.sessionmaker) as session:
            stmt = (
                select(Refund.id)
                .where(Refund.status == "pending", Refund.created_at <= cutoff)
                .order_by(Refund.created_at)
                .limit(limit)
            )
            ids = list((await session.execute(stmt)).scalars())
        return [await self.settle(refund_id) for refund_id in ids]


async def _pending_total(session: AsyncSession, payment_id: uuid.UUID) -> int:
    stmt = select(func.coalesce(func.sum(Refund.amount), 0)).where(
        Refund.payment_id == payment_id, Refund.status == "pending"
    )
    return int((await session.execute(stmt)).scalar_one())


async def _locked(session: AsyncSession, refund_id: uuid.UUID) -> Refund:
    stmt = select(Refund).where(Refund.id == refund_id).with_for_update()
    return (await session.execute(stmt)).scalar_one()


def _event(session: AsyncSession, refund: Refund, payment: Payment, type_: str) -> None:
    record_event(
        session,
        tenant_id=refund.tenant_id,
        client_id=payment.client_id,
        type=type_,
        subject_type="refund",
        subject_id=refund.id,
        data={
            "payment_id": str(payment.id),
            "amount": refund.amount,
            "invoice_id": str(payment.invoice_id),
        },
    )
