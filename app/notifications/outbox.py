"""Sending the outbox: a kind of work for `app/core/work_queue.Worker`, so any number of
senders (`billing-portal send-notifications`, and every `run-scheduler`) can run at once.

Each claim first fans new events out into messages and (once per run) looks for notices that
fall due by date, then takes due messages under a lease. Each message is one attempt; a failed
one is tried again after 1 min, 5 min, 30 min, 2 h and 6 h, then it has failed (at once when
the server refuses it for good, 5xx). A sender that dies after the server took a message but
before recording it leaves the lease to lapse and the message goes again with the same
Message-ID; otherwise each message is sent once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import transaction
from app.core.work_queue import DrainReport, Worker
from app.notifications.enqueue import fan_out, scan_due_notices
from app.notifications.kinds import SECRET_LINK_KINDS
from app.notifications.repository import EmailClaim, EmailQueue
from app.notifications.smtp import Outgoing, SendResult, send

logger = logging.getLogger("billing_portal.email")

RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def next_attempt_after(attempt: int, now: datetime) -> datetime | None:
    """When to try again after failed attempt number `attempt`; None: it has failed."""
    if attempt >= MAX_ATTEMPTS:
        return None
    return now + RETRY_DELAYS[attempt - 1]


def message_id_domain(settings: Settings) -> str:
    return urlsplit(settings.public_url or "").hostname or "billing-portal.localhost"


class EmailWork:
    """Due email messages as a kind of work for `Worker`."""

    name = "email"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.lease = timedelta(seconds=settings.email_lease_seconds)

    async def claim(self, limit: int) -> list[EmailClaim]:
        async with transaction(self.sessionmaker) as session:
            await fan_out(session, self.settings)
        now = utcnow()
        async with transaction(self.sessionmaker) as session:
            return await EmailQueue(session).claim(limit, now=now, lease_until=now + self.lease)

    async def renew(self, claims: list[EmailClaim]) -> None:
        async with transaction(self.sessionmaker) as session:
            await EmailQueue(session).renew(claims, lease_until=utcnow() + self.lease)

    async def hand_back(self, claims: list[EmailClaim]) -> None:
        async with transaction(self.sessionmaker) as session:
            await EmailQueue(session).hand_back(claims, now=utcnow())

    async def process(self, claim: EmailClaim) -> str:
        async with transaction(self.sessionmaker) as session:
            message = await EmailQueue(session).claimed(claim)
            if message is None:
                return "skipped"  # taken over by another sender
            outgoing = Outgoing(
                message_id=f"<{message.id}@{message_id_domain(self.settings)}>",
                kind=message.kind,
                to=message.to_address,
                from_name=message.from_name,
                subject=message.subject,
                text=message.body_text or "",
                html=message.body_html or "",
            )
        result = await send(outgoing, self.settings)
        async with transaction(self.sessionmaker) as session:
            return await record_attempt(session, claim, result)


async def record_attempt(session: AsyncSession, claim: EmailClaim, result: SendResult) -> str:
    """ "sent", "retrying", "failed", or "skipped" if the claim is no longer this sender's."""
    message = await EmailQueue(session).claimed(claim)
    if message is None:
        return "skipped"
    now = utcnow()
    message.lease_expires_at = None
    message.updated_at = now
    if result.sent:
        message.status = "sent"
        message.sent_at = now
        message.next_attempt_at = None
        message.last_error = None
        if message.kind in SECRET_LINK_KINDS:
            # The link is a credential: it lives on in the inbox only.
            message.body_text = message.body_html = None
        return "sent"
    message.last_error = result.error
    retry_at = None if result.permanent else next_attempt_after(message.attempt, now)
    message.status = "pending" if retry_at else "failed"
    message.next_attempt_at = retry_at
    logger.warning(
        "email not sent",
        extra={"email_id": str(message.id), "attempt": message.attempt, "error": result.error},
    )
    return "retrying" if retry_at else "failed"


async def outbox_depth(session: AsyncSession) -> int:
    """Messages not yet sent, across tenants (for the metrics)."""
    return await EmailQueue(session).pending_count()


class EmailSender:
    """Sends everything due now; `stop` ends it after the messages in flight."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.work = EmailWork(sessionmaker, settings)
        self.settings = settings
        self.stop = stop or asyncio.Event()

    async def run_once(self) -> DrainReport:
        async with transaction(self.sessionmaker) as session:
            await scan_due_notices(session, self.settings, utcnow().date())
        worker = Worker(
            self.work,
            batch_size=self.settings.email_concurrency * 4,
            concurrency=self.settings.email_concurrency,
            heartbeat_seconds=self.settings.email_lease_seconds / 3,
            stop=self.stop,
        )
        return await worker.drain()


async def run_forever(sender: EmailSender, interval: float) -> None:
    stop = sender.stop
    while not stop.is_set():
        try:
            report = await sender.run_once()
        except Exception:
            logger.exception("email run failed; trying again next interval")
        else:
            if report.claimed:
                logger.info("emails sent", extra=dict(report.outcomes))
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
