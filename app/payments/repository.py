"""Payment, allocation and refund queries, scoped to the caller; the history pages are one query
for the page plus one each for the methods and the allocations behind it (no N+1)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Result, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import PageParams
from app.core.repository import Repository, paginate
from app.models import Client, Invoice, Payment, PaymentAllocation, PaymentMethod, Refund
from app.payments.errors import PaymentNotFound


class PaymentRepository(Repository[Payment]):
    model = Payment
    not_found = PaymentNotFound

    async def page(
        self,
        params: PageParams,
        *,
        client_id: uuid.UUID | None,
        status: str | None,
        invoice_id: uuid.UUID | None,
    ) -> tuple[list[Payment], str | None]:
        stmt = self.readable()
        if client_id is not None:
            stmt = stmt.where(Payment.client_id == client_id)
        if status is not None:
            stmt = stmt.where(Payment.status == status)
        if invoice_id is not None:
            paying = select(PaymentAllocation.payment_id).where(
                PaymentAllocation.invoice_id == invoice_id
            )
            stmt = stmt.where(Payment.id.in_(paying))
        return await paginate(self.session, stmt, params, [Payment.created_at, Payment.id])

    async def by_request_key(self, request_key: str) -> Payment | None:
        stmt = self.readable().where(Payment.request_key == request_key)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def locked(self, payment_id: uuid.UUID) -> Payment:
        """The payment, row-locked: whoever records its outcome first wins, the rest see it."""
        found = await self.get(payment_id, for_update=True)
        if found is None:
            raise self.not_found()
        return found

    async def with_method_and_customer(
        self, payment_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[Payment, PaymentMethod, str | None]]:
        """The payments (a payment not the caller's is missing), each with its method (deleted
        or not) and its client's customer reference at the gateway: what asking the gateway
        again needs, in one statement."""
        tenant_id = self.principal.tenant_id
        stmt = (
            self.readable()
            .add_columns(PaymentMethod, Client.gateway_customer_reference)
            .join(
                PaymentMethod,
                (PaymentMethod.id == Payment.payment_method_id)
                & (PaymentMethod.tenant_id == tenant_id),
            )
            .join(Client, (Client.id == Payment.client_id) & (Client.tenant_id == tenant_id))
            .where(Payment.id.in_(payment_ids))
        )
        rows = (await self.session.execute(stmt)).all()
        return {payment.id: (payment, method, customer) for payment, method, customer in rows}

    async def locked_with_allocations(
        self, payment_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[Payment, PaymentMethod, list[PaymentAllocation]]]:
        """The payments, row-locked in id order, each with its method (deleted or not) and its
        allocations in their order, in one statement (one row per allocation; only payments'
        rows are locked). A payment not the caller's is missing."""
        tenant_id = self.principal.tenant_id
        stmt = (
            self.readable()
            .add_columns(PaymentMethod, PaymentAllocation)
            .join(
                PaymentMethod,
                (PaymentMethod.id == Payment.payment_method_id)
                & (PaymentMethod.tenant_id == tenant_id),
            )
            .join(
                PaymentAllocation,
                (PaymentAllocation.payment_id == Payment.id)
                & (PaymentAllocation.tenant_id == tenant_id),
            )
            .where(Payment.id.in_(payment_ids))
            .order_by(Payment.id, PaymentAllocation.position)
            .with_for_update(of=Payment)
        )
        found: dict[uuid.UUID, tuple[Payment, PaymentMethod, list[PaymentAllocation]]] = {}
        for payment, method, allocation in (await self.session.execute(stmt)).all():
            found.setdefault(payment.id, (payment, method, []))[2].append(allocation)
        return found

    def add_allocations(self, allocations: Sequence[PaymentAllocation]) -> None:
        self.session.add_all(allocations)

    async def allocations(self, payment_ids: Sequence[uuid.UUID]) -> list[PaymentAllocation]:
        """The allocations of these payments, each payment's in its own order."""
        if not payment_ids:
            return []
        stmt = (
            select(PaymentAllocation)
            .where(
                PaymentAllocation.payment_id.in_(payment_ids),
                PaymentAllocation.tenant_id == self.principal.tenant_id,
            )
            .order_by(PaymentAllocation.payment_id, PaymentAllocation.position)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def shown(
        self, payment_ids: Sequence[uuid.UUID]
    ) -> list[tuple[PaymentAllocation, str | None, PaymentMethod]]:
        """What a payment is shown with, in one statement: each allocation (each payment's in
        its own order) with its invoice's number and the payment's method (deleted ones
        included: history still names the card it used)."""
        if not payment_ids:
            return []
        tenant_id = self.principal.tenant_id
        stmt = (
            select(PaymentAllocation, Invoice.number, PaymentMethod)
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .join(
                PaymentMethod,
                (PaymentMethod.id == Payment.payment_method_id)
                & (PaymentMethod.tenant_id == tenant_id),
            )
            .outerjoin(
                Invoice,
                (Invoice.id == PaymentAllocation.invoice_id) & (Invoice.tenant_id == tenant_id),
            )
            .where(
                PaymentAllocation.payment_id.in_(payment_ids),
                PaymentAllocation.tenant_id == tenant_id,
            )
            .order_by(PaymentAllocation.payment_id, PaymentAllocation.position)
        )
        return [(a, number, m) for a, number, m in (await self.session.execute(stmt)).all()]

    async def with_refunds(self, payment_id: uuid.UUID) -> tuple[Payment, list[Refund]] | None:
        """The payment (None: not the caller's) and its refunds, oldest first, in one
        statement (one row per refund)."""
        stmt = (
            self.readable()
            .add_columns(Refund)
            .outerjoin(
                Refund,
                (Refund.payment_id == Payment.id) & (Refund.tenant_id == Payment.tenant_id),
            )
            .where(Payment.id == payment_id)
            .order_by(Refund.created_at, Refund.id)
        )
        rows = (await self.session.execute(stmt)).all()
        if not rows:
            return None
        return rows[0][0], [refund for _payment, refund in rows if refund is not None]

    async def methods(self, method_ids: set[uuid.UUID]) -> dict[uuid.UUID, PaymentMethod]:
        """Methods by id, deleted ones included: history still names the card it used."""
        if not method_ids:
            return {}
        stmt = select(PaymentMethod).where(
            PaymentMethod.id.in_(method_ids), PaymentMethod.tenant_id == self.principal.tenant_id
        )
        return {m.id: m for m in (await self.session.execute(stmt)).scalars()}


class RefundRepository(Repository[Refund]):
    model = Refund

    async def by_request_key(self, request_key: str) -> Refund | None:
        stmt = self.readable().where(Refund.request_key == request_key)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def locked(self, refund_id: uuid.UUID) -> Refund:
        found = await self.get(refund_id, for_update=True)
        assert found is not None, "a refund being settled exists"
        return found

    async def of_payment(self, payment_id: uuid.UUID) -> list[Refund]:
        stmt = (
            self.readable()
            .where(Refund.payment_id == payment_id)
            .order_by(Refund.created_at, Refund.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def pending_total(self, payment_id: uuid.UUID) -> int:
        stmt = select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.tenant_id == self.principal.tenant_id,
            Refund.payment_id == payment_id,
            Refund.status == "pending",
        )
        return int((await self.session.execute(stmt)).scalar_one())


class UnsettledWork:
    """The one cross-tenant read of the money path: which payments and refunds the gateway
    left pending, as (tenant, id) pairs. Settling each then runs as that tenant's system
    principal, through the scoped repositories above."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def pending_payments(
        self, cutoff: datetime, limit: int | None
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        # Fewest tries first: payments the gateway keeps refusing to settle sink below newer
        # ones instead of taking the places of a limited run.
        stmt = _pending(Payment, cutoff).order_by(
            Payment.gateway_attempts, Payment.created_at, Payment.id
        )
        return _pairs(await self.session.execute(stmt.limit(limit)))

    async def pending_refunds(
        self, cutoff: datetime, limit: int | None
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        stmt = _pending(Refund, cutoff).order_by(Refund.created_at, Refund.id)
        return _pairs(await self.session.execute(stmt.limit(limit)))


def _pending(model: type[Payment] | type[Refund], cutoff: datetime) -> Select[uuid.UUID, uuid.UUID]:
    return select(model.tenant_id, model.id).where(
        model.status == "pending", model.created_at <= cutoff
    )


def _pairs(result: Result[uuid.UUID, uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
    return [(tenant_id, id_) for tenant_id, id_ in result.all()]
