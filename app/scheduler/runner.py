"""The due-payment runner: any number of copies may run at once, and each due payment is
charged exactly once.

Each scheduled payment that falls due is claimed for one attempt under a lease (the work
queue in `app/core/work_queue.py` keeps the claims flowing, renews their leases, hands back
unstarted ones on stop). An attempt is the payments service's three steps, with the scheduled
payment's bookkeeping in the same two transactions:

1. reserve the payment (its request key `scheduled:<id>:<attempt>` and gateway key
   `scheduled_<id>_<attempt>`) and note it on the scheduled payment; or, when nothing can be
   charged, end the attempt: canceled (the invoice was paid or voided), deferred (another
   payment holds the invoice) or failed (the payment method is gone);
2. the gateway call;
3. record the payment's outcome, and the attempt's: succeeded, a retry scheduled, failed, or
   parked until reconciliation settles an unknown outcome.

A runner that dies leaves its lease to lapse; the next claim takes the row again for the *same*
attempt, so it resumes the same payment with the same gateway key: never a second charge.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import transaction
from app.core.errors import Unprocessable
from app.core.idempotency import IdempotencyStore
from app.core.principal import ClientPrincipal, Principal
from app.core.work_queue import Worker
from app.gateways.base import Charge, PaymentGateway
from app.invoices.errors import InvoiceNotFound
from app.models import ScheduledPayment
from app.payments.charges import PaymentOrder
from app.payments.errors import InvoiceNotPayable, PaymentInProgress
from app.payments.outcome import Reserved
from app.payments.reconcile import reconcile
from app.payments.service import PaymentService
from app.scheduled_payments import service as scheduled
from app.scheduled_payments.repository import Claim, ScheduledPaymentRepository

logger = logging.getLogger("billing_portal.scheduler")

# Why an attempt cannot charge anything.
_REFUSALS = (InvoiceNotPayable, InvoiceNotFound, PaymentInProgress, Unprocessable)


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
    handed_back: int = 0
    reconciled: int = 0
    purged_idempotency_keys: int = 0

    def fields(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class ScheduledPaymentWork:
    """Due scheduled payments as a kind of work for `Worker`."""

    name = "scheduled_payments"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        payments: PaymentService,
        settings: Settings,
        *,
        recover_before: datetime | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.payments = payments
        self.settings = settings
        self.lease = timedelta(seconds=settings.scheduler_lease_seconds)
        self.recover_before = recover_before

    async def claim(self, limit: int) -> list[Claim]:
        async with transaction(self.sessionmaker) as session:
            return await scheduled.claim_due(
                session, limit, lease=self.lease, recover_before=self.recover_before
            )

    async def renew(self, claims: list[Claim]) -> None:
        async with transaction(self.sessionmaker) as session:
            await scheduled.renew_claims(session, claims, lease=self.lease)

    async def hand_back(self, claims: list[Claim]) -> None:
        async with transaction(self.sessionmaker) as session:
            await scheduled.hand_back(session, claims)

    async def process(self, claim: Claim) -> str:
        system = Principal.system(claim.tenant_id)
        try:
            async with transaction(self.sessionmaker) as session:
                row = await ScheduledPaymentRepository(session, system).claimed(claim)
                if row is None:
                    return "skipped"  # finished by another runner, or canceled before it began
                principal = ClientPrincipal.of(system, row.client_id)
                reserved = await self.payments.reserve(session, principal, _order(row, claim))
                scheduled.attempt_started(row, reserved.record)
        except _REFUSALS as refusal:
            return await self._refused(system, claim, refusal)
        return await self._charge(principal, claim, reserved)

    async def _charge(
        self, principal: ClientPrincipal, claim: Claim, reserved: Reserved[Charge]
    ) -> str:
        outcome = await self.payments.send(reserved) if reserved.call is not None else None
        async with transaction(self.sessionmaker) as session:
            payment = reserved.record
            if outcome is not None:
                payment = await self.payments.record(session, principal, payment.id, outcome)
            row = await ScheduledPaymentRepository(session, principal).claimed(
                claim, for_update=True
            )
            if row is None:
                return "skipped"
            return scheduled.attempt_finished(
                session,
                row,
                payment,
                retry_days=self.settings.scheduler_retry_days,
                pending_wait=timedelta(seconds=self.settings.pending_reconcile_after_seconds),
            )

    async def _refused(self, system: Principal, claim: Claim, refusal: Exception) -> str:
        """The attempt ends without a payment (the reserving transaction rolled back)."""
        async with transaction(self.sessionmaker) as session:
            row = await ScheduledPaymentRepository(session, system).claimed(claim, for_update=True)
            if row is None:
                return "skipped"
            if isinstance(refusal, PaymentInProgress):
                scheduled.defer(session, row)
                return "deferred"
            if isinstance(refusal, InvoiceNotPayable):
                paid = refusal.invoice_status == "paid"
                scheduled.cancel(
                    session, row, "the invoice was paid" if paid else "the invoice was voided"
                )
                return "canceled"
            if isinstance(refusal, InvoiceNotFound):
                scheduled.cancel(session, row, "the invoice no longer exists")
                return "canceled"
            assert isinstance(refusal, Unprocessable)
            scheduled.fail(session, row, code="payment_method_unavailable", reason=refusal.detail)
            return "failed"


def _order(row: ScheduledPayment, claim: Claim) -> PaymentOrder:
    return PaymentOrder(
        payment_method_id=row.payment_method_id,
        invoice_ids=(row.invoice_id,),
        # What was scheduled, or less when the invoice owes less by now.
        amount=row.amount,
        up_to=True,
        origin="scheduled",
        request_key=f"scheduled:{row.id}:{claim.attempt}",
        scheduled_payment_id=row.id,
        gateway_key=f"scheduled_{row.id}_{claim.attempt}",
    )


class PaymentRunner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        gateway: PaymentGateway,
        settings: Settings,
        *,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gateway = gateway
        self.settings = settings
        self.payments = PaymentService(sessionmaker, gateway)
        self.stop = stop or asyncio.Event()

    def work(self, *, recover_before: datetime | None = None) -> ScheduledPaymentWork:
        return ScheduledPaymentWork(
            self.sessionmaker, self.payments, self.settings, recover_before=recover_before
        )

    async def claim(self, limit: int) -> list[Claim]:
        return await self.work().claim(limit)

    async def process(self, claim: Claim) -> str:
        return await self.work().process(claim)

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
        # Rows this run leaves pending wait for the next run (see ScheduledPaymentQueue.claim).
        worker = Worker(
            self.work(recover_before=utcnow()),
            batch_size=self.settings.scheduler_batch_size,
            concurrency=self.settings.scheduler_concurrency,
            heartbeat_seconds=self.settings.scheduler_lease_seconds / 3,
            stop=self.stop,
        )
        drained = await worker.drain()
        report.claimed = drained.claimed
        report.handed_back = drained.handed_back
        for outcome, count in drained.outcomes.items():
            setattr(report, outcome, getattr(report, outcome) + count)
        return report


async def run_forever(runner: PaymentRunner, interval: float) -> None:
    """Run until the runner's `stop` is set, waiting `interval` seconds (or for stop) between
    runs. Stopping mid-run finishes the payments in flight and hands back the rest."""
    stop = runner.stop
    while not stop.is_set():
        try:
            report = await runner.run_once()
        except Exception:
            logger.exception("scheduler run failed; trying again next interval")
        else:
            if report.claimed or report.reconciled:
                logger.info("scheduler run", extra=report.fields())
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
