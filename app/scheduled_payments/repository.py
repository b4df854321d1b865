"""Scheduled-payment queries, scoped to the caller, and the runner's queue over them.

Status, version and attempts change only through `app/scheduled_payments/service.py`: these
statements are its tools (the set-based ones claim and hand back many rows at once).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import PageParams
from app.core.repository import Repository, paginate
from app.models import ScheduledPayment
from app.scheduled_payments.errors import ScheduledPaymentNotFound
from app.tickets.repository import TicketRepository

# Not finished: they still count against the invoice's balance, and a payment method they use
# cannot be deleted.
OPEN_STATUSES = ("scheduled", "processing", "on_hold")


@dataclass(frozen=True, slots=True)
class Claim:
    """A scheduled payment taken by a runner for one attempt, under a lease."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    attempt: int


class ScheduledPaymentRepository(Repository[ScheduledPayment]):
    model = ScheduledPayment
    not_found = ScheduledPaymentNotFound

    async def page(
        self,
        params: PageParams,
        *,
        client_id: uuid.UUID | None,
        status: str | None,
        invoice_id: uuid.UUID | None,
    ) -> tuple[list[ScheduledPayment], str | None]:
        stmt = self.readable()
        if client_id is not None:
            stmt = stmt.where(ScheduledPayment.client_id == client_id)
        if status is not None:
            stmt = stmt.where(ScheduledPayment.status == status)
        if invoice_id is not None:
            stmt = stmt.where(ScheduledPayment.invoice_id == invoice_id)
        return await paginate(
            self.session, stmt, params, [ScheduledPayment.created_at, ScheduledPayment.id]
        )

    async def autopay_pending(self, client_id: uuid.UUID) -> list[ScheduledPayment]:
        """AutoPay's payments that have not started, locked for change."""
        stmt = (
            self.readable()
            .where(
                ScheduledPayment.client_id == client_id,
                ScheduledPayment.origin == "autopay",
                ScheduledPayment.status == "scheduled",
            )
            .with_for_update()
        )
        return list((await self.session.execute(stmt)).scalars())

    async def for_invoices(
        self,
        invoice_ids: Sequence[uuid.UUID],
        *,
        statuses: tuple[str, ...] | None = None,
        origin: str | None = None,
        for_update: bool = False,
    ) -> list[ScheduledPayment]:
        """The invoices' scheduled payments, oldest first."""
        if not invoice_ids:
            return []
        stmt = self.readable().where(ScheduledPayment.invoice_id.in_(invoice_ids))
        if statuses is not None:
            stmt = stmt.where(ScheduledPayment.status.in_(statuses))
        if origin is not None:
            stmt = stmt.where(ScheduledPayment.origin == origin)
        stmt = stmt.order_by(ScheduledPayment.created_at, ScheduledPayment.id)
        if for_update:
            stmt = stmt.with_for_update()
        return list((await self.session.execute(stmt)).scalars())

    async def invoice_of(self, payment_id: uuid.UUID) -> uuid.UUID | None:
        """The invoice of one of the caller's scheduled payments (None when not theirs), read
        without loading the row, so that locking it afterwards reads it fresh."""
        stmt = self.readable().where(ScheduledPayment.id == payment_id)
        found = await self.session.execute(stmt.with_only_columns(ScheduledPayment.invoice_id))
        return found.scalar_one_or_none()

    async def method_in_use(self, method_id: uuid.UUID) -> bool:
        """An unfinished scheduled payment relies on the method."""
        stmt = (
            self.readable()
            .where(
                ScheduledPayment.payment_method_id == method_id,
                ScheduledPayment.status.in_(OPEN_STATUSES),
            )
            .limit(1)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def waiting_for_retry(
        self, client_id: uuid.UUID, *, origin: str | None = None
    ) -> list[ScheduledPayment]:
        """The client's payments waiting for a retry after a failed attempt, locked."""
        stmt = self.readable().where(
            ScheduledPayment.client_id == client_id,
            ScheduledPayment.status == "scheduled",
            ScheduledPayment.attempts > 0,
        )
        if origin is not None:
            stmt = stmt.where(ScheduledPayment.origin == origin)
        # Locked in the order every other statement locks several of them in.
        stmt = stmt.order_by(ScheduledPayment.created_at, ScheduledPayment.id)
        return list((await self.session.execute(stmt.with_for_update())).scalars())

    async def claimed(self, claim: Claim, *, for_update: bool = False) -> ScheduledPayment | None:
        """The row of a claim, if this attempt is still the runner's (not finished by another,
        not canceled before it started)."""
        stmt = self.readable().where(
            ScheduledPayment.id == claim.id,
            ScheduledPayment.status == "processing",
            ScheduledPayment.attempts == claim.attempt,
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def claimed_for_attempts(
        self, claims: Sequence[Claim], *, for_update: bool = False
    ) -> dict[uuid.UUID, tuple[ScheduledPayment, bool]]:
        """`claimed` for several claims at once, each row with whether its invoice has a
        billing dispute open: what attempts read before they reserve, in one statement.
        Locked rows are taken in id order."""
        disputed = TicketRepository.dispute_open(
            self.principal.tenant_id, ScheduledPayment.invoice_id
        )
        stmt = (
            self.readable()
            .add_columns(disputed)
            .where(
                tuple_(ScheduledPayment.id, ScheduledPayment.attempts).in_(
                    [(claim.id, claim.attempt) for claim in claims]
                ),
                ScheduledPayment.status == "processing",
            )
            .order_by(ScheduledPayment.id)
        )
        if for_update:
            stmt = stmt.with_for_update(of=ScheduledPayment)
        rows = (await self.session.execute(stmt)).all()
        return {row.id: (row, bool(flag)) for row, flag in rows}


class ScheduledPaymentQueue:
    """The runner's view of every tenant's scheduled payments: what is due, taken under a
    lease. The only cross-tenant statements of the scheduling domain; each claim then runs
    as its tenant's system principal."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, limit: int, *, now: datetime, lease_until: datetime, recover_before: datetime | None
    ) -> list[Claim]:
        """Take up to `limit` due rows (a new attempt each) and up to `limit` rows whose
        runner's lease ran out (the same attempt again: its payment is found by its key).

        `recover_before`: take back only abandoned rows last touched before then, so an
        attempt this run left pending waits for the next run instead of being taken again at
        once, and again, while the gateway is down.
        """
        due = (
            select(ScheduledPayment.id)
            .where(ScheduledPayment.status == "scheduled", ScheduledPayment.next_attempt_at <= now)
            .order_by(ScheduledPayment.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        abandoned = (
            select(ScheduledPayment.id)
            .where(
                ScheduledPayment.status == "processing", ScheduledPayment.lease_expires_at <= now
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if recover_before is not None:
            abandoned = abandoned.where(ScheduledPayment.updated_at < recover_before)
        # The ids first, in statements of their own: as a subquery of the UPDATE, PostgreSQL
        # may run `... LIMIT n FOR UPDATE SKIP LOCKED` again for each row it updates, each
        # time past the rows already taken, and so claim everything due.
        due_ids = list((await self.session.execute(due)).scalars())
        abandoned_ids = list((await self.session.execute(abandoned)).scalars())
        fresh = await self.session.execute(
            update(ScheduledPayment)
            # Repeating the guard keeps the update safe where FOR UPDATE is a no-op (SQLite).
            .where(ScheduledPayment.id.in_(due_ids), ScheduledPayment.status == "scheduled")
            .values(
                status="processing",
                attempts=ScheduledPayment.attempts + 1,
                lease_expires_at=lease_until,
                version=ScheduledPayment.version + 1,
                updated_at=now,
            )
            .returning(ScheduledPayment.id, ScheduledPayment.tenant_id, ScheduledPayment.attempts)
            .execution_options(synchronize_session=False)
        )
        claims = [Claim(*row) for row in fresh.all()]
        recovered = await self.session.execute(
            update(ScheduledPayment)
            .where(
                ScheduledPayment.id.in_(abandoned_ids),
                ScheduledPayment.status == "processing",
                ScheduledPayment.lease_expires_at <= now,
            )
            .values(lease_expires_at=lease_until, updated_at=now)
            .returning(ScheduledPayment.id, ScheduledPayment.tenant_id, ScheduledPayment.attempts)
            .execution_options(synchronize_session=False)
        )
        return claims + [Claim(*row) for row in recovered.all()]

    async def backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """How many rows are due and waiting, and when the oldest of them fell due."""
        stmt = select(func.count(), func.min(ScheduledPayment.next_attempt_at)).where(
            ScheduledPayment.status == "scheduled", ScheduledPayment.next_attempt_at <= now
        )
        count, oldest = (await self.session.execute(stmt)).one()
        return int(count), oldest

    async def renew(self, claims: Sequence[Claim], *, lease_until: datetime) -> None:
        """The runner is alive and still working on these: keep them its own."""
        if claims:
            await self.session.execute(
                update(ScheduledPayment)
                .where(_still_claimed(claims))
                .values(lease_expires_at=lease_until)
                .execution_options(synchronize_session=False)
            )

    async def hand_back(self, claims: Sequence[Claim], *, now: datetime) -> None:
        """Claims the runner will not start (it is stopping): due again at once, the attempt
        not counted, since nothing was tried."""
        if claims:
            await self.session.execute(
                update(ScheduledPayment)
                .where(_still_claimed(claims))
                .values(
                    status="scheduled",
                    attempts=ScheduledPayment.attempts - 1,
                    lease_expires_at=None,
                    next_attempt_at=now,
                    version=ScheduledPayment.version + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )


def _still_claimed(claims: Sequence[Claim]) -> ColumnElement[bool]:
    """Rows still in the attempt these claims took (not finished or taken over since)."""
    return and_(
        ScheduledPayment.status == "processing",
        tuple_(ScheduledPayment.id, ScheduledPayment.attempts).in_(
            [(c.id, c.attempt) for c in claims]
        ),
    )
