"""The due-payment runner: any number of copies may run at once, and each due payment is
charged exactly once.

Claiming: a short transaction marks due rows `processing` under a lease and commits before
any gateway call (`FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite the guarded update is
serialized by BEGIN IMMEDIATE). A runner that dies leaves its lease to expire; the next run
claims the row again for the *same* attempt, so it resumes the same payment with the same
gateway key (`scheduled_<id>_<attempt>`) and can only ever find the first charge.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import transaction
from app.core.errors import Unprocessable
from app.core.idempotency import IdempotencyStore
from app.gateways.base import PaymentGateway
from app.invoices.errors import InvoiceNotFound
from app.models import Invoice, Payment, ScheduledPayment
from app.payments.errors import InvoiceNotPayable, PaymentInProgress
from app.payments.processor import PaymentProcessor, PaymentRequest, reserve_in
from app.payments.reconcile import reconcile
from app.scheduled_payments.rules import next_retry_at, run_time_amount
from app.scheduled_payments.service import cancel, scheduled_event

logger = logging.getLogger("billing_portal.scheduler")

# Another payment on the invoice is in flight: look again after this long.
BUSY_INVOICE_DELAY = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Claim:
    id: uuid.UUID
    attempt: int


@dataclass
class RunReport:
    claimed: int = 0
    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    retrying: int = 0
    canceled: int = 0
    pending: int = 0
    deferred: int = 0
    errored: int = 0
    reconciled: int = 0
    purged_idempotency_keys: int = 0

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


class PaymentRunner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        gateway: PaymentGateway,
        settings: Settings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gateway = gateway
        self.settings = settings
        self.processor = PaymentProcessor(sessionmaker, gateway)
        self.lease = timedelta(seconds=settings.scheduler_lease_seconds)

    async def run_once(self) -> RunReport:
        """Everything due now: reconcile what the gateway left pending, then drain the queue."""
        report = RunReport()
        settled = await reconcile(
            self.sessionmaker,
            self.gateway,
            older_than=timedelta(seconds=self.settings.pending_reconcile_after_seconds),
        )
        report.reconciled = settled.payments_settled + settled.refunds_settled
        # Housekeeping rides along: keys past their 24 hours are no use to anyone.
        report.purged_idempotency_keys = await IdempotencyStore(
            self.sessionmaker, self.settings
        ).purge_expired()
        limit = asyncio.Semaphore(self.settings.scheduler_concurrency)

        async def bounded(claim: Claim) -> str:
            async with limit:
                try:
                    return await self.process(claim)
                except Exception:
                    # One payment's surprise must not end the run for the others. Its row
                    # stays `processing`; when the lease lapses a later run resumes the same
                    # attempt with the same key, so nothing is charged twice.
                    logger.exception(
                        "scheduled payment attempt failed unexpectedly; left to its lease",
                        extra={"scheduled_payment_id": str(claim.id), "attempt": claim.attempt},
                    )
                    return "errored"

        started = utcnow()
        while True:
            claims = await self.claim(self.settings.scheduler_batch_size, recover_before=started)
            if not claims:
                break
            report.claimed += len(claims)
            for outcome in await asyncio.gather(*(bounded(c) for c in claims)):
                report.count(outcome)
        return report

    async def claim(self, limit: int, *, recover_before: datetime | None = None) -> list[Claim]:
        """Take up to `limit` due rows (and rows whose runner died) for this runner.

        `recover_before`: take back only abandoned rows last touched before then (the run's
        start), so an attempt this run left pending waits for the next run instead of being
        taken again at once, and again, while the gateway is down.
        """
        now = utcnow()
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
        async with transaction(self.sessionmaker) as session:
            # The ids first, in statements of their own: as a subquery of the UPDATE,
            # PostgreSQL may run `... LIMIT n FOR UPDATE SKIP LOCKED` again for each row it
            # updates, each time past the rows already taken, and so claim everything due.
            due_ids = list((await session.execute(due)).scalars())
            abandoned_ids = list((await session.execute(abandoned)).scalars())
            fresh = await session.execute(
                update(ScheduledPayment)
                # Repeating the guard keeps the update safe where FOR UPDATE is a no-op.
                .where(ScheduledPayment.id.in_(due_ids), ScheduledPayment.status == "scheduled")
                .values(
                    status="processing",
                    attempts=ScheduledPayment.attempts + 1,
                    lease_expires_at=now + self.lease,
                    version=ScheduledPayment.version + 1,
                    updated_at=now,
                )
                .returning(ScheduledPayment.id, ScheduledPayment.attempts)
                .execution_options(synchronize_session=False)
            )
            claims = [Claim(id_, attempt) for id_, attempt in fresh.all()]
            recovered = await session.execute(
                update(ScheduledPayment)
                .where(
                    ScheduledPayment.id.in_(abandoned_ids),
                    ScheduledPayment.status == "processing",
                    ScheduledPayment.lease_expires_at <= now,
                )
                .values(lease_expires_at=now + self.lease, updated_at=now)
                .returning(ScheduledPayment.id, ScheduledPayment.attempts)
                .execution_options(synchronize_session=False)
            )
            claims += [Claim(id_, attempt) for id_, attempt in recovered.all()]
        return claims

    async def process(self, claim: Claim) -> str:
        try:
            payment_id = await self._reserve(claim)
        except _Finished as finished:
            return finished.outcome
        payment = await self.processor.settle(payment_id)
        return await self._record(claim, payment)

    async def _reserve(self, claim: Claim) -> uuid.UUID:
        # An attempt that ends without a payment (canceled, deferred, failed) must commit
        # what it recorded: catch its outcome inside the transaction, raise it after.
        finished: _Finished | None = None
        async with transaction(self.sessionmaker) as session:
            try:
                return await self._reserve_in(session, claim)
            except _Finished as outcome:
                finished = outcome
        assert finished is not None
        raise finished

    async def _reserve_in(self, session: AsyncSession, claim: Claim) -> uuid.UUID:
        request_key = f"scheduled:{claim.id}:{claim.attempt}"
        # Lock order is invoice, then scheduled payment, as everywhere else (voiding an
        # invoice cancels its scheduled payments): the other order could deadlock.
        invoice_id = await session.scalar(
            select(ScheduledPayment.invoice_id).where(ScheduledPayment.id == claim.id)
        )
        await session.execute(select(Invoice.id).where(Invoice.id == invoice_id).with_for_update())
        scheduled = await _locked(session, claim)
        existing = (
            await session.execute(select(Payment).where(Payment.request_key == request_key))
        ).scalar_one_or_none()
        if existing is not None:
            return existing.id  # this attempt got as far as the payment before: resume
        invoice = await session.get(Invoice, scheduled.invoice_id)
        assert invoice is not None
        if invoice.status != "open":
            reason = (
                "the invoice was paid" if invoice.status == "paid" else "the invoice was voided"
            )
            cancel(session, scheduled, reason)
            raise _Finished("canceled")
        amount = run_time_amount(scheduled.amount, invoice.balance, invoice.amount_reserved)
        if amount <= 0:
            self._defer(session, scheduled)
            raise _Finished("deferred")
        try:
            payment = await reserve_in(
                session,
                PaymentRequest(
                    tenant_id=scheduled.tenant_id,
                    client_id=scheduled.client_id,
                    invoice_id=scheduled.invoice_id,
                    payment_method_id=scheduled.payment_method_id,
                    amount=amount,
                    origin="scheduled",
                    request_key=request_key,
                    scheduled_payment_id=scheduled.id,
                    gateway_key=f"scheduled_{scheduled.id}_{claim.attempt}",
                ),
            )
        except (InvoiceNotPayable, InvoiceNotFound) as exc:
            cancel(session, scheduled, exc.detail)
            raise _Finished("canceled") from exc
        except PaymentInProgress:
            self._defer(session, scheduled)
            raise _Finished("deferred") from None
        except Unprocessable as exc:  # the payment method is gone
            _fail(session, scheduled, code="payment_method_unavailable", reason=exc.detail)
            raise _Finished("failed") from exc
        scheduled.last_payment_id = payment.id
        return payment.id

    def _defer(self, session: AsyncSession, scheduled: ScheduledPayment) -> None:
        # Not an attempt: nothing was tried. Give the attempt back and look again later.
        scheduled.status = "scheduled"
        scheduled.attempts -= 1
        scheduled.lease_expires_at = None
        scheduled.next_attempt_at = utcnow() + BUSY_INVOICE_DELAY
        scheduled.version += 1

    async def _record(self, claim: Claim, payment: Payment) -> str:
        async with transaction(self.sessionmaker) as session:
            try:
                scheduled = await _locked(session, claim)
            except _Finished as finished:
                return finished.outcome
            scheduled.last_payment_id = payment.id
            scheduled.version += 1
            scheduled.updated_at = utcnow()
            if payment.status == "pending":
                # The gateway's answer is unknown: reconciliation settles the payment, and this
                # row is picked up again (same attempt, same key) once the lease lapses.
                scheduled.lease_expires_at = utcnow() + timedelta(
                    seconds=self.settings.pending_reconcile_after_seconds
                )
                return "pending"
            scheduled.lease_expires_at = None
            if payment.status == "succeeded":
                scheduled.status = "succeeded"
                scheduled.failure_reason = scheduled.failure_code = None
                scheduled_event(
                    session, scheduled, "scheduled_payment.succeeded", payment_id=str(payment.id)
                )
                return "succeeded"
            retry_at = next_retry_at(
                utcnow(), claim.attempt, self.settings.scheduler_retry_days, payment.failure_code
            )
            if retry_at is None:
                _fail(
                    session,
                    scheduled,
                    code=payment.failure_code or "declined",
                    reason=payment.failure_message or "declined",
                )
                return "failed"
            scheduled.status = "scheduled"
            scheduled.next_attempt_at = retry_at
            scheduled.failure_code = payment.failure_code
            scheduled.failure_reason = payment.failure_message
            scheduled_event(
                session,
                scheduled,
                "scheduled_payment.retry_scheduled",
                next_attempt_at=retry_at.isoformat(),
                attempt=claim.attempt,
            )
            return "retrying"


class _Finished(Exception):
    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


async def _locked(session: AsyncSession, claim: Claim) -> ScheduledPayment:
    stmt = select(ScheduledPayment).where(ScheduledPayment.id == claim.id).with_for_update()
    scheduled = (await session.execute(stmt)).scalar_one_or_none()
    # Someone else finished this attempt (or the client canceled before it started).
    if scheduled is None or scheduled.status != "processing" or scheduled.attempts != claim.attempt:
        raise _Finished("skipped")
    return scheduled


def _fail(session: AsyncSession, scheduled: ScheduledPayment, *, code: str, reason: str) -> None:
    scheduled.status = "failed"
    scheduled.failure_code = code
    scheduled.failure_reason = reason[:500]
    scheduled.lease_expires_at = None
    scheduled.version += 1
    scheduled_event(session, scheduled, "scheduled_payment.failed", failure_code=code)


async def run_forever(runner: PaymentRunner, stop: asyncio.Event, interval: float) -> None:
    """Run until `stop` is set, between runs waiting `interval` seconds (or for `stop`)."""
    while not stop.is_set():
        try:
            report = await runner.run_once()
        except Exception:
            logger.exception("scheduler run failed; trying again next interval")
        else:
            if report.claimed or report.reconciled:
                logger.info("scheduler run", extra=_report_fields(report))
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue


def _report_fields(report: RunReport) -> dict[str, int]:
    return {k: v for k, v in report.__dict__.items() if isinstance(v, int)}
