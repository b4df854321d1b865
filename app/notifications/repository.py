"""Email queries: who receives a kind, what each person turned off, and the senders' queue.

`recipients` is the one place that knows who a client's contacts are (and who the staff are):
when people become members of several companies, only it changes.

`EmailQueue` is cross-tenant, like the webhook queue: the fan-out from the event log runs one
sender at a time (an advisory lock on PostgreSQL; SQLite has one writer), and messages are
claimed under a lease with `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import is_postgres
from app.models import (
    EmailMessage,
    Event,
    Invoice,
    Membership,
    NotificationOptOut,
    PaymentMethod,
    ScheduledPayment,
    Tenant,
    User,
)
from app.notifications.kinds import REQUIRED_KINDS

# pg_try_advisory_xact_lock key of the email fan-out: "emailout" in ASCII.
FANOUT_LOCK = 0x656D61696C6F7574


@dataclass(frozen=True, slots=True)
class EmailClaim:
    """A message taken by a sender for one attempt, under a lease."""

    id: uuid.UUID
    attempt: int


async def recipients(
    session: AsyncSession, tenant_id: uuid.UUID, *, client_id: uuid.UUID | None, kind: str
) -> list[User]:
    """The active people who get `kind`: the client's contacts, or (no client) the tenant's
    staff; without those who turned an optional kind off."""
    stmt = select(User).where(User.tenant_id == tenant_id, User.is_active.is_(True))
    if client_id is None:
        stmt = stmt.where(User.role == "staff")
    else:
        # A person may be a contact of several companies: every member hears about this one.
        members = select(Membership.user_id).where(
            Membership.tenant_id == tenant_id, Membership.client_id == client_id
        )
        stmt = stmt.where(User.role == "client", User.id.in_(members))
    if kind not in REQUIRED_KINDS:
        opted_out = select(NotificationOptOut.user_id).where(NotificationOptOut.kind == kind)
        stmt = stmt.where(User.id.not_in(opted_out))
    return list((await session.execute(stmt.order_by(User.created_at, User.id))).scalars())


async def tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    return (await session.execute(select(Tenant).where(Tenant.id == tenant_id))).scalar_one()


async def opted_out_kinds(session: AsyncSession, user_id: uuid.UUID) -> set[str]:
    stmt = select(NotificationOptOut.kind).where(NotificationOptOut.user_id == user_id)
    return set((await session.execute(stmt)).scalars())


async def set_opted_out(
    session: AsyncSession, user_id: uuid.UUID, *, off: Iterable[str], on: Iterable[str]
) -> None:
    on = list(on)
    if on:
        await session.execute(
            delete(NotificationOptOut).where(
                NotificationOptOut.user_id == user_id, NotificationOptOut.kind.in_(on)
            )
        )
    already = await opted_out_kinds(session, user_id)
    for kind in sorted(set(off) - already):
        session.add(NotificationOptOut(user_id=user_id, kind=kind))
    await session.flush()


async def existing_keys(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    stmt = select(EmailMessage.dedupe_key).where(EmailMessage.dedupe_key.in_(keys))
    return set((await session.execute(stmt)).scalars())


async def invoice_number(session: AsyncSession, invoice_id: uuid.UUID) -> str | None:
    return (
        await session.execute(select(Invoice.number).where(Invoice.id == invoice_id))
    ).scalar_one_or_none()


async def upcoming_charges(
    session: AsyncSession, *, today: date, until: date
) -> list[ScheduledPayment]:
    """Every tenant's scheduled payments waiting to be charged between today and `until`."""
    stmt = select(ScheduledPayment).where(
        ScheduledPayment.status == "scheduled",
        ScheduledPayment.scheduled_for >= today,
        ScheduledPayment.scheduled_for <= until,
    )
    return list((await session.execute(stmt)).scalars())


async def cards_expiring_in(
    session: AsyncSession, months: Sequence[tuple[int, int]]
) -> list[PaymentMethod]:
    """Every tenant's saved cards whose expiry is one of `months` ((year, month) pairs)."""
    stmt = select(PaymentMethod).where(
        PaymentMethod.type == "card",
        PaymentMethod.deleted_at.is_(None),
        tuple_(PaymentMethod.exp_year, PaymentMethod.exp_month).in_(list(months)),
    )
    return list((await session.execute(stmt)).scalars())


async def run_outcomes(session: AsyncSession, *, since: datetime) -> list[tuple[uuid.UUID, str]]:
    """(tenant, event type) of each scheduled payment the runner settled since `since`."""
    stmt = select(Event.tenant_id, Event.type).where(
        Event.created_at >= since,
        Event.actor_kind == "system",
        Event.type.in_(
            (
                "scheduled_payment.succeeded",
                "scheduled_payment.failed",
                "scheduled_payment.retry_scheduled",
            )
        ),
    )
    return [(row.tenant_id, row.type) for row in (await session.execute(stmt)).all()]


class EmailQueue:
    """Every tenant's messages, as the senders see them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def take_fanout_turn(self) -> bool:
        """Whether this sender may fan out now (one at a time; others skip it)."""
        if not is_postgres(self.session):
            return True
        taken = select(func.pg_try_advisory_xact_lock(FANOUT_LOCK))
        return bool((await self.session.execute(taken)).scalar_one())

    async def unemailed_events(self, limit: int) -> list[Event]:
        stmt = (
            select(Event)
            .where(Event.emailed_at.is_(None))
            .order_by(Event.created_at, Event.id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def mark_emailed(self, event_ids: Sequence[uuid.UUID], now: datetime) -> None:
        await self.session.execute(
            update(Event)
            .where(Event.id.in_(event_ids))
            .values(emailed_at=now)
            .execution_options(synchronize_session=False)
        )

    async def pending_count(self) -> int:
        stmt = select(func.count()).where(EmailMessage.status == "pending")
        return int((await self.session.execute(stmt)).scalar_one())

    async def claim(self, limit: int, *, now: datetime, lease_until: datetime) -> list[EmailClaim]:
        """Take up to `limit` due messages whose lease is free; each is a new attempt."""
        free = (EmailMessage.lease_expires_at.is_(None)) | (EmailMessage.lease_expires_at <= now)
        due = (
            select(EmailMessage.id)
            .where(EmailMessage.status == "pending", EmailMessage.next_attempt_at <= now, free)
            .order_by(EmailMessage.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = list((await self.session.execute(due)).scalars())
        if not ids:
            return []
        taken = await self.session.execute(
            update(EmailMessage)
            .where(EmailMessage.id.in_(ids), EmailMessage.status == "pending", free)
            .values(attempt=EmailMessage.attempt + 1, lease_expires_at=lease_until, updated_at=now)
            .returning(EmailMessage.id, EmailMessage.attempt)
            .execution_options(synchronize_session=False)
        )
        return [EmailClaim(*row) for row in taken.all()]

    async def claimed(self, claim: EmailClaim) -> EmailMessage | None:
        """The claim's message, locked, if this attempt is still the claimant's."""
        stmt = (
            select(EmailMessage)
            .where(
                EmailMessage.id == claim.id,
                EmailMessage.status == "pending",
                EmailMessage.attempt == claim.attempt,
            )
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def renew(self, claims: Sequence[EmailClaim], *, lease_until: datetime) -> None:
        if claims:
            await self.session.execute(
                update(EmailMessage)
                .where(_still_claimed(claims))
                .values(lease_expires_at=lease_until)
                .execution_options(synchronize_session=False)
            )

    async def hand_back(self, claims: Sequence[EmailClaim], *, now: datetime) -> None:
        if claims:
            await self.session.execute(
                update(EmailMessage)
                .where(_still_claimed(claims))
                .values(
                    attempt=EmailMessage.attempt - 1,
                    lease_expires_at=None,
                    next_attempt_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )


def _still_claimed(claims: Sequence[EmailClaim]) -> ColumnElement[bool]:
    return and_(
        EmailMessage.status == "pending",
        tuple_(EmailMessage.id, EmailMessage.attempt).in_([(c.id, c.attempt) for c in claims]),
    )
