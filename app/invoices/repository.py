"""Invoice queries, scoped to the caller; client users never see drafts.

The money columns (`amount_paid`, `amount_reserved`, `status` open/paid) change only through
the guarded statements at the end, which the payments service runs for each allocation.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Select,
    bindparam,
    case,
    delete,
    literal,
    select,
    update,
)

from app.core.clock import utcnow
from app.core.pagination import PageParams
from app.core.repository import Repository, paginate
from app.invoices.errors import InvoiceNotFound
from app.models import (
    Client,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    ServiceCategory,
    Tenant,
)


# The two statements of GET /invoices/{id}, built once (see `Repository.readable_once`).
def _with_lines(readable: Select[Invoice]) -> Select[Any]:
    invoice_id: BindParameter[Any] = bindparam("invoice_id")
    return (
        readable.add_columns(Tenant.timezone, InvoiceLine)
        .join(Tenant, Tenant.id == Invoice.tenant_id)
        .where(Invoice.id == invoice_id)
        .outerjoin(InvoiceLine, InvoiceLine.invoice_id == invoice_id)
        .order_by(InvoiceLine.position)
    )


def _applied(*columns: Any) -> Select[Any]:
    """What was paid on an invoice: each applied allocation with its payment and method."""
    return (
        select(*columns)
        .select_from(PaymentAllocation)
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .join(PaymentMethod, PaymentMethod.id == Payment.payment_method_id)
        .where(
            PaymentAllocation.invoice_id == bindparam("invoice_id"),
            PaymentAllocation.tenant_id == bindparam("tenant_id"),
            PaymentAllocation.status == "applied",
        )
        .order_by(PaymentAllocation.created_at, PaymentAllocation.id)
    )


_PAYMENTS_APPLIED = _applied(PaymentAllocation, Payment, PaymentMethod)
# The same rows, only the columns an invoice's detail shows: no ORM objects to build.
_PAYMENTS_SHOWN = _applied(
    Payment.id, PaymentAllocation.amount, Payment.settled_at, PaymentAllocation.amount_refunded
)


class InvoiceRepository(Repository[Invoice]):
    model = Invoice
    not_found = InvoiceNotFound

    def readable(self) -> Select[Invoice]:
        stmt = super().readable()
        if self.principal.is_client:
            stmt = stmt.where(Invoice.status != "draft")
        return stmt

    async def page(
        self,
        params: PageParams,
        *,
        client_id: uuid.UUID | None,
        status: str | None,
        overdue_on: date | None,
    ) -> tuple[list[Invoice], str | None]:
        stmt = self.readable()
        if client_id is not None:
            stmt = stmt.where(Invoice.client_id == client_id)
        if status is not None:
            stmt = stmt.where(Invoice.status == status)
        if overdue_on is not None:
            stmt = stmt.where(Invoice.status == "open", Invoice.due_date < overdue_on)
        return await paginate(self.session, stmt, params, [Invoice.created_at, Invoice.id])

    async def by_external_id(self, external_id: str, *, for_update: bool = False) -> Invoice | None:
        stmt = self.readable().where(Invoice.external_id == external_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def reload(self, invoice_id: uuid.UUID) -> Invoice:
        """The invoice as the database has it now (after the guarded updates below, which
        leave any copy already loaded behind)."""
        stmt = (
            self.readable()
            .where(Invoice.id == invoice_id)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one()

    async def with_lines(
        self, invoice_id: uuid.UUID, invoice: Invoice | None = None
    ) -> tuple[Invoice, str, list[InvoiceLine]] | None:
        """The invoice (None: not the caller's), its tenant's time zone and its lines, in one
        statement: the invoice joined to its tenant, and to each line (one row per line).

        Given `invoice` (already loaded, perhaps just changed), it is not read again: only
        the zone and the lines are."""
        if invoice is None:
            stmt, params = self.readable_once("with_lines", _with_lines)
            rows = (await self.session.execute(stmt, {**params, "invoice_id": invoice_id})).all()
        else:
            known = (
                select(Tenant.timezone, InvoiceLine)
                .select_from(Tenant)
                .where(Tenant.id == self.principal.tenant_id)
                .outerjoin(InvoiceLine, InvoiceLine.invoice_id == invoice_id)
                .order_by(InvoiceLine.position)
            )
            rows = (await self.session.execute(known)).all()
        if not rows:
            return None
        if invoice is None:
            invoice, timezone = rows[0][0], rows[0][1]
        else:
            timezone = rows[0][0]
        lines = [row[-1] for row in rows if row[-1] is not None]
        return invoice, timezone, lines

    async def lines(self, invoice_id: uuid.UUID) -> list[InvoiceLine]:
        stmt = (
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice_id)
            .order_by(InvoiceLine.position)
        )
        return list((await self.session.execute(stmt)).scalars())

    def add_lines(self, lines: Sequence[InvoiceLine]) -> None:
        self.session.add_all(lines)

    async def replace_lines(self, invoice_id: uuid.UUID, lines: Sequence[InvoiceLine]) -> None:
        """A draft's lines, all replaced (the caller holds the invoice's row lock)."""
        await self.session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id))
        self.session.add_all(lines)

    async def payments_applied(
        self, invoice_id: uuid.UUID
    ) -> list[tuple[PaymentAllocation, Payment, PaymentMethod]]:
        """What was paid on the invoice: each applied allocation, its payment and method."""
        params = {"invoice_id": invoice_id, "tenant_id": self.principal.tenant_id}
        return [(a, p, m) for a, p, m in (await self.session.execute(_PAYMENTS_APPLIED, params))]

    async def payments_shown(
        self, invoice_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, int, datetime | None, int]]:
        """`payments_applied`, as the invoice's detail shows them: the payment's id, the
        amount applied, when the payment settled and how much of it was refunded."""
        params = {"invoice_id": invoice_id, "tenant_id": self.principal.tenant_id}
        rows = await self.session.execute(_PAYMENTS_SHOWN, params)
        return [
            (payment_id, amount, paid_at, refunded)
            for payment_id, amount, paid_at, refunded in rows
        ]

    async def category_names(self, category_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not category_ids:
            return {}
        stmt = select(ServiceCategory.id, ServiceCategory.name).where(
            ServiceCategory.tenant_id == self.principal.tenant_id,
            ServiceCategory.id.in_(category_ids),
        )
        return dict((await self.session.execute(stmt)).all())

    async def client_of(self, invoice: Invoice) -> Client:
        stmt = select(Client).where(
            Client.id == invoice.client_id, Client.tenant_id == self.principal.tenant_id
        )
        return (await self.session.execute(stmt)).scalar_one()

    async def next_number(self) -> int:
        # One statement, so two invoices issued at once can never share a number.
        stmt = (
            update(Tenant)
            .where(Tenant.id == self.principal.tenant_id)
            .values(next_invoice_number=Tenant.next_invoice_number + 1)
            .returning(Tenant.next_invoice_number - 1)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def tenant(self) -> Tenant:
        tenant = await self.session.get(Tenant, self.principal.tenant_id)
        assert tenant is not None
        return tenant

    # -- the money columns, for the payments service ---------------------------------------

    async def lock_for_payment(self, invoice_ids: Sequence[uuid.UUID]) -> list[Invoice]:
        """The caller's issued invoices among `invoice_ids`, row-locked in id order: two
        payments locking overlapping invoices take them in the same order, so neither waits
        on the other in a circle."""
        stmt = (
            self.readable()
            .where(Invoice.id.in_(invoice_ids), Invoice.status != "draft")
            .order_by(Invoice.id)
            .with_for_update()
        )
        return list((await self.session.execute(stmt)).scalars())

    async def of_client(
        self, client_id: uuid.UUID, invoice_ids: Sequence[uuid.UUID] | None
    ) -> list[Invoice]:
        """The client's issued invoices (these ones, or its open ones when None), oldest due
        date first."""
        stmt = self.readable().where(Invoice.client_id == client_id, Invoice.status != "draft")
        if invoice_ids is None:
            stmt = stmt.where(Invoice.status == "open")
        else:
            stmt = stmt.where(Invoice.id.in_(invoice_ids))
        stmt = stmt.order_by(Invoice.due_date, Invoice.issued_on, Invoice.number, Invoice.id)
        return list((await self.session.execute(stmt)).scalars())

    async def lock_one(self, invoice_id: uuid.UUID) -> Invoice | None:
        """One of the caller's invoices, row-locked (None when it is not theirs)."""
        return await self.get(invoice_id, for_update=True)

    async def hold(self, amounts: Mapping[uuid.UUID, int]) -> set[uuid.UUID]:
        """Reserve each invoice's amount on it while it is open, unless that would exceed
        what it owes; returns the invoices held. One statement, whose guard holds even where
        FOR UPDATE is a no-op (SQLite)."""
        if not amounts:
            return set()
        part = _per_invoice(amounts)
        result = await self.session.execute(
            update(Invoice)
            .where(
                Invoice.id.in_(amounts),
                Invoice.tenant_id == self.principal.tenant_id,
                Invoice.status == "open",
                Invoice.amount_paid + Invoice.amount_reserved + part <= Invoice.total,
            )
            .values(amount_reserved=Invoice.amount_reserved + part)
            .returning(Invoice.id)
            .execution_options(synchronize_session=False)
        )
        return set(result.scalars())

    async def apply_held(
        self, amounts: Mapping[uuid.UUID, int]
    ) -> dict[uuid.UUID, tuple[Invoice, str]]:
        """Held amounts were paid: each moves from reserved to paid; all paid closes the
        invoice. Returns each invoice as it is after (any copy already loaded is refreshed)
        with its tenant's time zone, for its event: one statement."""
        if not amounts:
            return {}
        part = _per_invoice(amounts)
        zone = select(Tenant.timezone).where(Tenant.id == Invoice.tenant_id).scalar_subquery()
        result = await self.session.execute(
            update(Invoice)
            .where(Invoice.id.in_(amounts), Invoice.tenant_id == self.principal.tenant_id)
            .values(
                amount_paid=Invoice.amount_paid + part,
                amount_reserved=Invoice.amount_reserved - part,
                status=case(
                    (Invoice.amount_paid + part == Invoice.total, "paid"), else_=Invoice.status
                ),
                updated_at=utcnow(),
            )
            .returning(Invoice, zone)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return {invoice.id: (invoice, str(timezone)) for invoice, timezone in result.all()}

    async def release_held(self, amounts: Mapping[uuid.UUID, int]) -> None:
        if not amounts:
            return
        part = _per_invoice(amounts)
        await self.session.execute(
            update(Invoice)
            .where(Invoice.id.in_(amounts), Invoice.tenant_id == self.principal.tenant_id)
            .values(amount_reserved=Invoice.amount_reserved - part)
            .execution_options(synchronize_session=False)
        )

    async def reopen(self, invoice_id: uuid.UUID, amount: int) -> None:
        """Money refunded: the invoice owes it again."""
        await self.session.execute(
            update(Invoice)
            .where(Invoice.id == invoice_id, Invoice.tenant_id == self.principal.tenant_id)
            .values(amount_paid=Invoice.amount_paid - amount, status="open", updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def _per_invoice(amounts: Mapping[uuid.UUID, int]) -> ColumnElement[int]:
    """Each invoice's own amount, in a statement over several invoices."""
    whens = [
        (Invoice.id == invoice_id, literal(amount, BigInteger))
        for invoice_id, amount in amounts.items()
    ]
    return case(*whens, else_=literal(0, BigInteger))
