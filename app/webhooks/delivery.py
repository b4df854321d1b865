"""Sending webhooks: a kind of work for `app/core/work_queue.Worker`, so any number of
deliverers (`billing-portal deliver-webhooks`, and every `run-scheduler`) can run at once.

Each claim first hands new events out to the endpoints that want them, then takes due
deliveries under a lease: per endpoint only the first one still pending, so an endpoint gets
its events in order, one at a time (a failing delivery holds the ones after it until it
succeeds or fails for good). Each delivery is one attempt: a POST of
`{"id", "type", "timestamp", "data"}` signed after Standard Webhooks; a 2xx within the timeout
succeeds, anything else is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, and then
the delivery has failed. An endpoint whose attempts have all failed for 5 days is disabled.

A deliverer that dies between claiming and recording leaves the lease to lapse; another takes
the delivery again and sends it once more (the receiver tells repeats by `webhook-id`): a
delivery is never lost, and may arrive twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import transaction
from app.core.events import record_event
from app.core.principal import Principal
from app.core.work_queue import DrainReport, Worker
from app.models import Event, WebhookEndpoint
from app.webhooks.repository import (
    DeliveryClaim,
    WebhookDeliveryRepository,
    WebhookEndpointRepository,
    WebhookQueue,
)
from app.webhooks.schemas import WebhookEndpointOut
from app.webhooks.secrets import SecretBox, SecretUnreadable, signature_header
from app.webhooks.sender import AttemptResult, post_signed

logger = logging.getLogger("billing_portal.webhooks")

# After a failed attempt n (1-based), the next one waits RETRY_DELAYS[n - 1].
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
DISABLE_AFTER = timedelta(days=5)
DISPATCH_BATCH = 500
CANNOT_SIGN = "the signing secret cannot be read (BILLING_SECRET_KEY changed?): rotate the secret"


@dataclass(frozen=True, slots=True)
class Message:
    """What one attempt sends."""

    url: str
    msg_id: str
    body: bytes
    secrets: tuple[str, ...]


def message_body(event: Event) -> bytes:
    payload = {
        "id": str(event.id),
        "type": event.type,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def next_attempt_after(attempt: int, now: datetime) -> datetime | None:
    """When to try again after failed attempt number `attempt`; None: it has failed."""
    if attempt >= MAX_ATTEMPTS:
        return None
    return now + RETRY_DELAYS[attempt - 1]


class WebhookDeliveryWork:
    """Due webhook deliveries as a kind of work for `Worker`."""

    name = "webhook_deliveries"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.lease = timedelta(seconds=settings.webhooks_lease_seconds)
        self.box = SecretBox(settings)

    async def claim(self, limit: int) -> list[DeliveryClaim]:
        async with transaction(self.sessionmaker) as session:
            await WebhookQueue(session).dispatch(DISPATCH_BATCH, now=utcnow())
        now = utcnow()
        async with transaction(self.sessionmaker) as session:
            return await WebhookQueue(session).claim(limit, now=now, lease_until=now + self.lease)

    async def renew(self, claims: list[DeliveryClaim]) -> None:
        async with transaction(self.sessionmaker) as session:
            await WebhookQueue(session).renew(claims, lease_until=utcnow() + self.lease)

    async def hand_back(self, claims: list[DeliveryClaim]) -> None:
        async with transaction(self.sessionmaker) as session:
            await WebhookQueue(session).hand_back(claims, now=utcnow())

    async def process(self, claim: DeliveryClaim) -> str:
        try:
            async with transaction(self.sessionmaker) as session:
                message = await self._message(session, claim)
        except SecretUnreadable:
            logger.error("webhook secret unreadable", extra={"delivery_id": str(claim.id)})
            unreadable = AttemptResult(None, 0, CANNOT_SIGN)
            async with transaction(self.sessionmaker) as session:
                return await record_attempt(session, claim, unreadable)
        if message is None:
            return "skipped"
        timestamp = int(utcnow().timestamp())
        headers = {
            "webhook-id": message.msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                message.secrets, message.msg_id, timestamp, message.body
            ),
        }
        result = await post_signed(
            message.url,
            message.body,
            headers,
            timeout=self.settings.webhooks_timeout_seconds,
            allow_private=self.settings.webhooks_allow_private_urls,
        )
        async with transaction(self.sessionmaker) as session:
            return await record_attempt(session, claim, result)

    async def _message(self, session: AsyncSession, claim: DeliveryClaim) -> Message | None:
        principal = Principal.system(claim.tenant_id)
        delivery = await WebhookDeliveryRepository(session, principal).claimed(claim)
        if delivery is None:
            return None  # taken over by another deliverer, or sent again meanwhile
        endpoint = await WebhookEndpointRepository(session, principal).get_or_404(
            delivery.endpoint_id
        )
        event = await WebhookDeliveryRepository(session, principal).event(delivery.event_id)
        secrets = [self.box.open(endpoint.secret_encrypted, endpoint.id)]
        previous = endpoint.previous_secret_encrypted
        expires = endpoint.previous_secret_expires_at
        if previous is not None and expires is not None and expires > utcnow():
            secrets.append(self.box.open(previous, endpoint.id))
        return Message(endpoint.url, str(event.id), message_body(event), tuple(secrets))


async def record_attempt(session: AsyncSession, claim: DeliveryClaim, result: AttemptResult) -> str:
    """The attempt's outcome, if the claim is still this deliverer's: "succeeded", "retrying",
    "failed" or "skipped"."""
    principal = Principal.system(claim.tenant_id)
    delivery = await WebhookDeliveryRepository(session, principal).claimed(claim)
    if delivery is None:
        return "skipped"
    endpoint = await WebhookEndpointRepository(session, principal).get_or_404(
        delivery.endpoint_id, for_update=True
    )
    now = utcnow()
    delivery.response_status = result.response_status
    delivery.duration_ms = result.duration_ms
    delivery.last_error = None if result.succeeded else _error_of(result)
    delivery.last_attempt_at = now
    delivery.lease_expires_at = None
    delivery.updated_at = now
    if result.succeeded:
        delivery.status = "succeeded"
        delivery.next_attempt_at = None
        endpoint.failing_since = None
        return "succeeded"
    retry_at = next_attempt_after(delivery.attempt, now)
    delivery.status = "pending" if retry_at else "failed"
    delivery.next_attempt_at = retry_at
    _endpoint_failed(session, endpoint, now)
    return "retrying" if retry_at else "failed"


def _error_of(result: AttemptResult) -> str:
    return result.error or f"the receiver answered {result.response_status}"


def _endpoint_failed(session: AsyncSession, endpoint: WebhookEndpoint, now: datetime) -> None:
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    elif endpoint.enabled and now - endpoint.failing_since >= DISABLE_AFTER:
        endpoint.enabled = False
        endpoint.disabled_reason = "every delivery failed for 5 days"
        endpoint.updated_at = now
        record_event(
            session,
            tenant_id=endpoint.tenant_id,
            type="webhook_endpoint.disabled",
            subject_type="webhook_endpoint",
            subject_id=endpoint.id,
            data=WebhookEndpointOut.model_validate(endpoint).model_dump(mode="json"),
        )


async def outbox_depth(session: AsyncSession) -> int:
    """Deliveries not yet done, across tenants (for the metrics)."""
    return await WebhookQueue(session).pending_count()


class WebhookDeliverer:
    """Sends everything due now; `stop` ends it after the attempts in flight."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.work = WebhookDeliveryWork(sessionmaker, settings)
        self.settings = settings
        self.stop = stop or asyncio.Event()

    async def run_once(self) -> DrainReport:
        """Drain until nothing is due: a delivery that succeeds lets its endpoint's next one
        go, so this drains again while the last drain took anything."""
        total = DrainReport()
        while not self.stop.is_set():
            worker = Worker(
                self.work,
                batch_size=self.settings.webhooks_concurrency * 4,
                concurrency=self.settings.webhooks_concurrency,
                heartbeat_seconds=self.settings.webhooks_lease_seconds / 3,
                stop=self.stop,
            )
            report = await worker.drain()
            total.claimed += report.claimed
            total.handed_back += report.handed_back
            total.outcomes.update(report.outcomes)
            if not report.claimed:
                break
        return total


async def run_forever(deliverer: WebhookDeliverer, interval: float) -> None:
    stop = deliverer.stop
    while not stop.is_set():
        try:
            report = await deliverer.run_once()
        except Exception:
            logger.exception("webhook delivery run failed; trying again next interval")
        else:
            if report.claimed:
                logger.info("webhooks delivered", extra=dict(report.outcomes))
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            continue
