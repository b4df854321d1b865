"""Webhook queries: the tenant's endpoints and delivery logs, and the deliverers' queue.

`WebhookQueue` is the one cross-tenant part: it hands new events out to the endpoints that want
them (one hand-out at a time, so each endpoint's deliveries are numbered in event order) and
claims what is due under a lease, with `FOR UPDATE SKIP LOCKED`, one delivery per endpoint at a
time: the first one still pending, so an endpoint gets its events in order.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.core.db import is_postgres
from app.core.errors import NotFound
from app.core.pagination import PageParams
from app.core.repository import Repository, paginate
from app.models import Event, WebhookDelivery, WebhookEndpoint

# pg_try_advisory_xact_lock key of the hand-out: "webhooks" in ASCII.
DISPATCH_LOCK = 0x776562686F6F6B73


class WebhookEndpointNotFound(NotFound):
    default_detail = "No such webhook endpoint."


class WebhookDeliveryNotFound(NotFound):
    default_detail = "No such delivery."


@dataclass(frozen=True, slots=True)
class DeliveryClaim:
    """A delivery taken by a deliverer for one attempt, under a lease."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    attempt: int


class WebhookEndpointRepository(Repository[WebhookEndpoint]):
    model = WebhookEndpoint
    not_found = WebhookEndpointNotFound

    async def page(self, params: PageParams) -> tuple[list[WebhookEndpoint], str | None]:
        order = [WebhookEndpoint.created_at, WebhookEndpoint.id]
        return await paginate(self.session, self.readable(), params, order)

    async def remove(self, endpoint: WebhookEndpoint) -> None:
        await self.session.delete(endpoint)


class WebhookDeliveryRepository(Repository[WebhookDelivery]):
    model = WebhookDelivery
    not_found = WebhookDeliveryNotFound

    async def page(
        self, endpoint_id: uuid.UUID, params: PageParams, *, status: str | None
    ) -> tuple[list[WebhookDelivery], str | None]:
        stmt = self.readable().where(WebhookDelivery.endpoint_id == endpoint_id)
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        return await paginate(self.session, stmt, params, [WebhookDelivery.sequence])

    async def of_endpoint(
        self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID, *, for_update: bool = False
    ) -> WebhookDelivery:
        stmt = self.readable().where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        found = (await self.session.execute(stmt)).scalar_one_or_none()
        if found is None:
            raise WebhookDeliveryNotFound()
        return found

    async def claimed(self, claim: DeliveryClaim) -> WebhookDelivery | None:
        """The delivery of a claim, locked, if this attempt is still the claimant's."""
        stmt = (
            self.readable()
            .where(
                WebhookDelivery.id == claim.id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempt == claim.attempt,
            )
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def event(self, event_id: uuid.UUID) -> Event:
        stmt = select(Event).where(
            Event.id == event_id, Event.tenant_id == self.principal.tenant_id
        )
        return (await self.session.execute(stmt)).scalar_one()


class WebhookQueue:
    """Every tenant's deliveries, as the deliverers see them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def dispatch(self, limit: int, *, now: datetime) -> int:
        """Hand up to `limit` new events, oldest first, to the endpoints that want them; the
        number of events handed out. One deliverer does this at a time (others skip it)."""
        if is_postgres(self.session):
            taken = select(func.pg_try_advisory_xact_lock(DISPATCH_LOCK))
            if not (await self.session.execute(taken)).scalar_one():
                return 0
        events = (
            await self.session.execute(
                select(Event.id, Event.tenant_id, Event.type, Event.created_at)
                .where(Event.dispatched_at.is_(None))
                .order_by(Event.created_at, Event.id)
                .limit(limit)
            )
        ).all()
        if not events:
            return 0
        endpoints: dict[uuid.UUID, list[WebhookEndpoint]] = defaultdict(list)
        found = await self.session.execute(
            select(WebhookEndpoint)
            .where(
                WebhookEndpoint.tenant_id.in_({e.tenant_id for e in events}),
                WebhookEndpoint.enabled.is_(True),
            )
            .with_for_update()
        )
        for endpoint in found.scalars():
            endpoints[endpoint.tenant_id].append(endpoint)
        for event in events:
            for endpoint in endpoints[event.tenant_id]:
                wanted = endpoint.event_types is None or event.type in endpoint.event_types
                # Ids are time-ordered: only events recorded after the endpoint was made.
                if wanted and event.id > endpoint.id:
                    self.session.add(
                        WebhookDelivery(
                            tenant_id=event.tenant_id,
                            endpoint_id=endpoint.id,
                            event_id=event.id,
                            event_type=event.type,
                            sequence=endpoint.next_sequence,
                            status="pending",
                            attempt=0,
                            next_attempt_at=now,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    endpoint.next_sequence += 1
        await self.session.flush()
        await self.session.execute(
            update(Event)
            .where(Event.id.in_([e.id for e in events]))
            .values(dispatched_at=now)
            .execution_options(synchronize_session=False)
        )
        return len(events)

    async def pending_count(self) -> int:
        """Deliveries not yet done (the outbox's depth)."""
        stmt = select(func.count()).where(WebhookDelivery.status == "pending")
        return int((await self.session.execute(stmt)).scalar_one())

    async def claim(
        self, limit: int, *, now: datetime, lease_until: datetime
    ) -> list[DeliveryClaim]:
        """Take up to `limit` due deliveries, each the first one pending of its endpoint, whose
        lease is free (never taken, or lapsed: its deliverer died); each is a new attempt."""
        earlier = aliased(WebhookDelivery)
        first_pending = ~exists().where(
            earlier.endpoint_id == WebhookDelivery.endpoint_id,
            earlier.status == "pending",
            earlier.sequence < WebhookDelivery.sequence,
        )
        free = (WebhookDelivery.lease_expires_at.is_(None)) | (
            WebhookDelivery.lease_expires_at <= now
        )
        due = (
            select(WebhookDelivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                free,
                WebhookEndpoint.enabled.is_(True),
                first_pending,
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
        # The ids first, in a statement of their own (see ScheduledPaymentQueue.claim).
        ids = list((await self.session.execute(due)).scalars())
        if not ids:
            return []
        taken = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids), WebhookDelivery.status == "pending", free)
            .values(
                attempt=WebhookDelivery.attempt + 1, lease_expires_at=lease_until, updated_at=now
            )
            .returning(WebhookDelivery.id, WebhookDelivery.tenant_id, WebhookDelivery.attempt)
            .execution_options(synchronize_session=False)
        )
        return [DeliveryClaim(*row) for row in taken.all()]

    async def renew(self, claims: Sequence[DeliveryClaim], *, lease_until: datetime) -> None:
        if claims:
            await self.session.execute(
                update(WebhookDelivery)
                .where(_still_claimed(claims))
                .values(lease_expires_at=lease_until)
                .execution_options(synchronize_session=False)
            )

    async def hand_back(self, claims: Sequence[DeliveryClaim], *, now: datetime) -> None:
        """Claims not started: free again at once, the attempt not counted."""
        if claims:
            await self.session.execute(
                update(WebhookDelivery)
                .where(_still_claimed(claims))
                .values(
                    attempt=WebhookDelivery.attempt - 1,
                    lease_expires_at=None,
                    next_attempt_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )


def _still_claimed(claims: Sequence[DeliveryClaim]) -> ColumnElement[bool]:
    return and_(
        WebhookDelivery.status == "pending",
        tuple_(WebhookDelivery.id, WebhookDelivery.attempt).in_(
            [(c.id, c.attempt) for c in claims]
        ),
    )
