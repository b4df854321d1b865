"""Putting messages in the outbox: each is rendered once, for one person, under a key naming
its cause (`dedupe_key`, unique), so the same cause never makes a second message.

- `enqueue_invitation` and `enqueue_password_reset` are called by the accounts code in the
  transaction that makes the link's token;
- `fan_out` turns new events (written in their change's transaction) into messages; the sender
  runs it, one sender at a time, marking each event in the same transaction;
- `scan_due_notices` finds charges N days away and cards about to expire;
- `enqueue_autopay_summaries` tells staff what a due-payment run did.
"""

from __future__ import annotations

import calendar
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.config import Settings
from app.models import EmailMessage, Event, User
from app.notifications import repository
from app.notifications.kinds import KINDS, REQUIRED_KINDS
from app.notifications.render import public_link, render

CARD_NOTICE = timedelta(days=30)
FANOUT_BATCH = 500


async def enqueue(
    session: AsyncSession,
    settings: Settings,
    *,
    kind: str,
    tenant_id: uuid.UUID,
    recipient: User,
    key: str,
    context: dict[str, Any],
) -> EmailMessage | None:
    """One message of `kind` to `recipient`, unless `key` already made one (None then)."""
    assert kind in KINDS, f"{kind} is not a notification kind"
    dedupe_key = f"{kind}:{key}:{recipient.id}"
    if await repository.existing_keys(session, [dedupe_key]):
        return None
    tenant = await repository.tenant(session, tenant_id)
    rendered = render(
        kind,
        {
            "tenant_name": tenant.name,
            "person_name": recipient.full_name,
            "preferences_link": None
            if kind in REQUIRED_KINDS
            else public_link(settings, "/account/notifications"),
            **context,
        },
    )
    now = utcnow()
    message = EmailMessage(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        user_id=recipient.id,
        kind=kind,
        dedupe_key=dedupe_key[:200],
        to_address=recipient.email,
        from_name=tenant.name,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
        status="pending",
        attempt=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    # Another process may be making the same message at this moment (two runners' summaries
    # of one instant): the unique key lets one win; the loser's savepoint goes, not its work.
    try:
        async with session.begin_nested():
            session.add(message)
            await session.flush()  # so the same key, enqueued again in this transaction, is seen
    except IntegrityError:
        return None
    return message


async def enqueue_invitation(
    session: AsyncSession,
    settings: Settings,
    *,
    user: User,
    link: str,
    expires_at: datetime,
    key: str,
) -> EmailMessage | None:
    """The invitation to `user` with its single-use sign-in `link` (absolute; see
    `public_link`). `key` names this invitation (say, the token row's id): the same key never
    sends twice. Call it in the transaction that creates the link's token."""
    return await enqueue(
        session,
        settings,
        kind="invitation",
        tenant_id=user.tenant_id,
        recipient=user,
        key=key,
        context={"link": link, "expires_at": _when(expires_at)},
    )


async def enqueue_password_reset(
    session: AsyncSession,
    settings: Settings,
    *,
    user: User,
    link: str,
    expires_at: datetime,
    key: str,
) -> EmailMessage | None:
    """The password-reset message to `user`, like `enqueue_invitation`."""
    return await enqueue(
        session,
        settings,
        kind="password_reset",
        tenant_id=user.tenant_id,
        recipient=user,
        key=key,
        context={"link": link, "expires_at": _when(expires_at)},
    )


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


async def fan_out(session: AsyncSession, settings: Settings) -> int:
    """Turn up to a batch of new events into messages; the number of events looked at."""
    queue = repository.EmailQueue(session)
    if not await queue.take_fanout_turn():
        return 0
    events = await queue.unemailed_events(FANOUT_BATCH)
    for event in events:
        await _messages_for(session, settings, event)
    if events:
        await queue.mark_emailed([e.id for e in events], utcnow())
    return len(events)


async def _messages_for(session: AsyncSession, settings: Settings, event: Event) -> None:
    data = event.data
    plan: tuple[str, str, dict[str, Any]] | None = None
    if event.type == "invoice.issued":
        plan = ("invoice_issued", f"/invoices/{data['id']}", {"invoice": data})
    elif event.type == "payment.succeeded":
        plan = ("payment_receipt", f"/payments/{data['id']}", {"payment": data})
    elif event.type == "payment.failed":
        plan = ("payment_failed", f"/invoices/{data['invoice_id']}", {"payment": data})
    elif event.type == "scheduled_payment.canceled" or (
        # The runner's own steps (taking it up, giving it back) are not news; a person's or an
        # integration's change (date, amount, method, a hold) is.
        event.type == "scheduled_payment.updated" and event.actor_kind != "system"
    ):
        change = "canceled" if event.type.endswith("canceled") else "changed"
        context = {"scheduled": data, "change": change}
        plan = ("scheduled_payment_changed", f"/scheduled-payments/{data['id']}", context)
    elif event.type == "ticket.updated" and (event.details or {}).get("author_role") == "staff":
        plan = ("ticket_updated", f"/tickets/{data['id']}", {"ticket": data})
    if plan is None or event.client_id is None:
        return
    kind, path, context = plan
    people = await repository.recipients(
        session, event.tenant_id, client_id=event.client_id, kind=kind
    )
    for person in people:
        if kind == "scheduled_payment_changed" and person.id == event.actor_id:
            continue  # they made the change themselves
        await enqueue(
            session,
            settings,
            kind=kind,
            tenant_id=event.tenant_id,
            recipient=person,
            key=f"event:{event.id}",
            context={**context, "link": public_link(settings, path)},
        )


async def scan_due_notices(session: AsyncSession, settings: Settings, today: date) -> None:
    """`autopay_upcoming` for charges within the notice days (once per payment and date) and
    `card_expiring` for cards ending within 30 days (once per card and expiry)."""
    if not await repository.EmailQueue(session).take_fanout_turn():
        return
    until = today + timedelta(days=settings.autopay_notice_days)
    for scheduled in await repository.upcoming_charges(session, today=today, until=until):
        number = await repository.invoice_number(session, scheduled.invoice_id)
        context = {
            "scheduled": {
                "amount": scheduled.amount,
                "currency": scheduled.currency,
                "scheduled_for": scheduled.scheduled_for.isoformat(),
            },
            "invoice_number": number or "(draft)",
            "link": public_link(settings, f"/scheduled-payments/{scheduled.id}"),
        }
        for person in await repository.recipients(
            session, scheduled.tenant_id, client_id=scheduled.client_id, kind="autopay_upcoming"
        ):
            await enqueue(
                session,
                settings,
                kind="autopay_upcoming",
                tenant_id=scheduled.tenant_id,
                recipient=person,
                key=f"{scheduled.id}:{scheduled.scheduled_for.isoformat()}",
                context=context,
            )
    # A card ending within 30 days ends this month or the next.
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    months = [(today.year, today.month), (next_month.year, next_month.month)]
    for card in await repository.cards_expiring_in(session, months):
        assert card.exp_year is not None and card.exp_month is not None
        last_day = calendar.monthrange(card.exp_year, card.exp_month)[1]
        ends = date(card.exp_year, card.exp_month, last_day)
        if not today <= ends <= today + CARD_NOTICE:
            continue
        context = {
            "card": {"brand": card.brand, "expires": f"{card.exp_month:02d}/{card.exp_year}"},
            "link": public_link(settings, "/payment-methods"),
        }
        for person in await repository.recipients(
            session, card.tenant_id, client_id=card.client_id, kind="card_expiring"
        ):
            await enqueue(
                session,
                settings,
                kind="card_expiring",
                tenant_id=card.tenant_id,
                recipient=person,
                key=f"{card.id}:{card.exp_year}-{card.exp_month:02d}",
                context=context,
            )


async def enqueue_autopay_summaries(
    session: AsyncSession, settings: Settings, *, run_started: datetime
) -> None:
    """One summary per tenant whose scheduled payments the run settled, to each staff member."""
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for tenant_id, type_ in await repository.run_outcomes(session, since=run_started):
        outcome = type_.removeprefix("scheduled_payment.").replace("retry_scheduled", "retrying")
        tally = counts.setdefault(tenant_id, {"succeeded": 0, "failed": 0, "retrying": 0})
        tally[outcome] += 1
    for tenant_id, tally in counts.items():
        for person in await repository.recipients(
            session, tenant_id, client_id=None, kind="autopay_summary"
        ):
            await enqueue(
                session,
                settings,
                kind="autopay_summary",
                tenant_id=tenant_id,
                recipient=person,
                key=f"{tenant_id}:{run_started.isoformat()}",
                context={**tally, "link": public_link(settings, "/scheduled-payments")},
            )
