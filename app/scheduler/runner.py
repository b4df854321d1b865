"""The due-payment runner: any number of copies may run at once, and each due payment is
charged exactly once.

Each scheduled payment that falls due is claimed for one attempt under a lease; the work queue
(`app/core/work_queue.py`) keeps the claims flowing, renews their leases while it works, and
hands back unstarted ones when it stops. Each claim is one attempt
(`app/scheduled_payments/charging.py`). A runner that dies leaves its lease to lapse; the next
claim takes the row again for the *same* attempt, which finds its payment by its key: never a
second charge.
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
from app.core.idempotency import IdempotencyStore
from app.core.metrics import OUTBOX_DEPTH, RUNNER_QUEUE_DEPTH, RUNNER_QUEUE_LAG
from app.core.work_queue import Worker
from app.gateways.base import PaymentGateway
from app.notifications.enqueue import enqueue_autopay_summaries
from app.notifications.outbox import EmailSender
from app.notifications.outbox import outbox_depth as email_outbox_depth
from app.payments.reconcile import reconcile
from app.payments.service import PaymentService
from app.scheduled_payments import attempts
from app.scheduled_payments.charging import Attempts
from app.scheduled_payments.repository import Claim
from app.webhooks.delivery import WebhookDeliverer, outbox_depth

logger = logging.getLogger("billing_portal.scheduler")


@dataclass
class RunReport:
    claimed: int = 0
    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    retrying: int = 0
    declined: int = 0
    canceled: int = 0
    pending: int = 0
    deferred: int = 0
    held: int = 0
    errored: int = 0
    handed_back: int = 0
    reconciled: int = 0
    purged_idempotency_keys: int = 0
    webhooks_sent: int = 0
    emails_sent: int = 0

    def fields(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class ScheduledPaymentWork:
    """Due scheduled payments as a kind of work for `Worker`."""

    name = "scheduled_payments"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        attempt: Attempts,
        settings: Settings,
        *,
        recover_before: datetime | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.attempt = attempt
        self.lease = timedelta(seconds=settings.scheduler_lease_seconds)
        self.recover_before = recover_before

    async def claim(self, limit: int) -> list[Claim]:
        async with transaction(self.sessionmaker) as session:
            return await attempts.claim_due(
                session, limit, lease=self.lease, recover_before=self.recover_before
            )

    async def renew(self, claims: list[Claim]) -> None:
        async with transaction(self.sessionmaker) as session:
            await attempts.renew_claims(session, claims, lease=self.lease)

    async def hand_back(self, claims: list[Claim]) -> None:
        async with transaction(self.sessionmaker) as session:
            await attempts.hand_back(session, claims)

    async def process(self, claim: Claim) -> str:
        return await self.attempt.run_claimed(claim)


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
        self.charging = Attempts(sessionmaker, self.payments, settings)
        self.stop = stop or asyncio.Event()

    def work(self, *, recover_before: datetime | None = None) -> ScheduledPaymentWork:
        return ScheduledPaymentWork(
            self.sessionmaker, self.charging, self.settings, recover_before=recover_before
        )

    async def claim(self, limit: int) -> list[Claim]:
        return await self.work().claim(limit)

    async def process(self, claim: Claim) -> str:
        return await self.charging.run_claimed(claim)

    async def run_once(self) -> RunReport:
        """Everything due now: reconcile what the gateway left pending, then drain the queue."""
        report = RunReport()
        started = utcnow()
        settled = await reconcile(
            self.sessionmaker,
            self.gateway,
            older_than=timedelta(seconds=self.settings.pending_reconcile_after_seconds),
            concurrency=self.settings.reconcile_concurrency,
            stop=self.stop,
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
        # Last, so the events of this run's payments go out with it.
        sent = await WebhookDeliverer(self.sessionmaker, self.settings, stop=self.stop).run_once()
        report.webhooks_sent = sent.claimed
        async with transaction(self.sessionmaker) as session:
            await enqueue_autopay_summaries(session, self.settings, run_started=started)
        mailed = await EmailSender(self.sessionmaker, self.settings, stop=self.stop).run_once()
        report.emails_sent = mailed.outcomes["sent"]
        await self.measure()
        return report

    async def measure(self) -> None:
        """The queues' gauges for /metrics: due payments waiting and the oldest one's lag,
        webhook deliveries and emails not yet done."""
        async with transaction(self.sessionmaker) as session:
            due, lag = await attempts.backlog(session)
            webhooks = await outbox_depth(session)
            emails = await email_outbox_depth(session)
        RUNNER_QUEUE_DEPTH.labels("scheduled_payments").set(due)
        RUNNER_QUEUE_LAG.labels("scheduled_payments").set(lag.total_seconds())
        OUTBOX_DEPTH.labels("webhook").set(webhooks)
        OUTBOX_DEPTH.labels("email").set(emails)


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
            if report.claimed or report.reconciled or report.webhooks_sent or report.emails_sent:
                logger.info("scheduler run", extra=report.fields())
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
