"""AutoPay: one setting per client, and the scheduled payments it makes when invoices are
issued. Changing the setting changes the payments it made that have not started."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.autopay.schemas import AutopayIn, AutopayOut
from app.core.clock import today_in, utcnow
from app.core.errors import Unprocessable
from app.core.etag import check_if_match
from app.core.principal import Principal
from app.models import (
    AutopayCategory,
    AutopaySetting,
    Invoice,
    InvoiceLine,
    PaymentMethod,
    ScheduledPayment,
)
from app.scheduled_payments.repository import OPEN_STATUSES, ScheduledPaymentRepository
from app.scheduled_payments.rules import autopay_date, start_of_day
from app.scheduled_payments.service import (
    cancel,
    live_method,
    schedule,
    scheduled_event,
    tenant_timezone,
)
from app.tenancy.repository import ServiceCategoryRepository


async def load_setting(
    session: AsyncSession, client_id: uuid.UUID, *, for_update: bool = False
) -> tuple[AutopaySetting | None, set[uuid.UUID]]:
    stmt = select(AutopaySetting).where(AutopaySetting.client_id == client_id)
    if for_update:
        stmt = stmt.with_for_update()
    setting = (await session.execute(stmt)).scalar_one_or_none()
    if setting is None:
        return None, set()
    rows = await session.execute(
        select(AutopayCategory.service_category_id).where(AutopayCategory.setting_id == setting.id)
    )
    return setting, set(rows.scalars())


def present(
    client_id: uuid.UUID, setting: AutopaySetting | None, categories: set[uuid.UUID]
) -> AutopayOut:
    return AutopayOut(
        client_id=client_id,
        enabled=bool(setting and setting.enabled),
        payment_method_id=setting.payment_method_id if setting else None,
        service_category_ids=sorted(categories, key=str),
        days_before_due=setting.days_before_due if setting else 0,
        updated_at=setting.updated_at if setting else None,
    )


async def replace_setting(
    session: AsyncSession, principal: Principal, data: AutopayIn, *, if_match: str | None
) -> tuple[AutopaySetting, set[uuid.UUID]]:
    client_id = principal.client_id
    assert client_id is not None
    setting, old_categories = await load_setting(session, client_id, for_update=True)
    check_if_match(if_match, setting.version if setting else 0)
    await _validate(session, principal, client_id, data)
    if setting is None:
        setting = AutopaySetting(tenant_id=principal.tenant_id, client_id=client_id, version=0)
        session.add(setting)
    old_method = setting.payment_method_id
    setting.enabled = data.enabled
    setting.payment_method_id = data.payment_method_id
    setting.days_before_due = data.days_before_due
    setting.version = (setting.version or 0) + 1
    setting.updated_at = utcnow()
    await session.flush()
    categories = set(data.service_category_ids)
    if categories != old_categories:
        await session.execute(
            delete(AutopayCategory).where(AutopayCategory.setting_id == setting.id)
        )
        session.add_all(
            AutopayCategory(setting_id=setting.id, service_category_id=category)
            for category in categories
        )
    await _follow(
        session, principal, setting, categories, method_changed=old_method != data.payment_method_id
    )
    await session.flush()
    return setting, categories


async def _validate(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID, data: AutopayIn
) -> None:
    if data.payment_method_id is not None:
        await live_method(session, principal, client_id, data.payment_method_id)
    elif data.enabled:
        raise Unprocessable(
            "Choose the payment method AutoPay should use.", loc=("body", "payment_method_id")
        )
    if data.enabled and not data.service_category_ids:
        raise Unprocessable(
            "Choose at least one service category for AutoPay to cover.",
            loc=("body", "service_category_ids"),
        )
    wanted = set(data.service_category_ids)
    known = await ServiceCategoryRepository(session, principal).existing_ids(wanted)
    for index, category in enumerate(data.service_category_ids):
        if category not in known:
            raise Unprocessable(
                "No such service category.", loc=("body", "service_category_ids", index)
            )


async def _follow(
    session: AsyncSession,
    principal: Principal,
    setting: AutopaySetting,
    categories: set[uuid.UUID],
    *,
    method_changed: bool,
) -> None:
    """Bring AutoPay's payments that have not started in line with the new setting."""
    pending = await ScheduledPaymentRepository(session, principal).autopay_pending(
        setting.client_id
    )
    if not pending:
        return
    if not setting.enabled:
        for payment in pending:
            cancel(session, payment, "AutoPay was turned off")
        return
    timezone = await tenant_timezone(session, principal.tenant_id)
    today = today_in(timezone)
    invoices = {
        i.id: i
        for i in (
            await session.execute(
                select(Invoice).where(Invoice.id.in_({p.invoice_id for p in pending}))
            )
        ).scalars()
    }
    covered = await covered_amounts(session, list(invoices), categories)
    for payment in pending:
        invoice = invoices[payment.invoice_id]
        amount = min(covered.get(invoice.id, 0), invoice.balance)
        if amount <= 0:
            cancel(session, payment, "AutoPay no longer covers this invoice's services")
            continue
        assert setting.payment_method_id is not None
        day = autopay_date(invoice.due_date, setting.days_before_due, today)
        changed = (
            amount != payment.amount
            or day != payment.scheduled_for
            or (method_changed and payment.payment_method_id != setting.payment_method_id)
        )
        if not changed:
            continue
        payment.amount = amount
        payment.scheduled_for = day
        start = start_of_day(day, timezone)
        # A payment waiting for a retry keeps its retry time: changing the setting must not
        # pull the next attempt ahead of the retry schedule.
        payment.next_attempt_at = (
            start if payment.attempts == 0 else max(payment.next_attempt_at, start)
        )
        payment.payment_method_id = setting.payment_method_id
        payment.version += 1
        payment.updated_at = utcnow()
        scheduled_event(session, payment, "scheduled_payment.updated", reason="autopay changed")


async def covered_amounts(
    session: AsyncSession, invoice_ids: list[uuid.UUID], categories: set[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """For each invoice, the sum of its lines whose service category AutoPay covers."""
    if not invoice_ids or not categories:
        return {}
    rows = await session.execute(
        select(InvoiceLine.invoice_id, InvoiceLine.amount).where(
            InvoiceLine.invoice_id.in_(invoice_ids),
            InvoiceLine.service_category_id.in_(categories),
        )
    )
    totals: dict[uuid.UUID, int] = defaultdict(int)
    for invoice_id, amount in rows.all():
        totals[invoice_id] += amount
    return dict(totals)


async def schedule_for_issued_invoice(
    session: AsyncSession, principal: Principal, invoice: Invoice
) -> None:
    """The issue hook: an invoice issued to a client with AutoPay on gets its payment."""
    if invoice.status != "open":
        return
    setting, categories = await load_setting(session, invoice.client_id)
    if setting is None or not setting.enabled or setting.payment_method_id is None:
        return
    amount = min(
        (await covered_amounts(session, [invoice.id], categories)).get(invoice.id, 0),
        invoice.balance,
    )
    if amount <= 0:
        return
    timezone = await tenant_timezone(session, invoice.tenant_id)
    schedule(
        session,
        invoice=invoice,
        method_id=setting.payment_method_id,
        amount=amount,
        day=autopay_date(invoice.due_date, setting.days_before_due, today_in(timezone)),
        timezone=timezone,
        origin="autopay",
    )


async def cancel_for_voided_invoice(
    session: AsyncSession, principal: Principal, invoice: Invoice
) -> None:
    """The void hook: nothing is left to pay, so nothing stays scheduled."""
    stmt = (
        select(ScheduledPayment)
        .where(ScheduledPayment.invoice_id == invoice.id, ScheduledPayment.status == "scheduled")
        .with_for_update()
    )
    for payment in (await session.execute(stmt)).scalars():
        cancel(session, payment, "the invoice was voided")


async def method_in_use(session: AsyncSession, method: PaymentMethod) -> bool:
    """A method AutoPay or an unfinished scheduled payment relies on cannot be deleted."""
    autopay = await session.execute(
        select(AutopaySetting.id)
        .where(AutopaySetting.payment_method_id == method.id, AutopaySetting.enabled.is_(True))
        .limit(1)
    )
    if autopay.first() is not None:
        return True
    scheduled = await session.execute(
        select(ScheduledPayment.id)
        .where(
            ScheduledPayment.payment_method_id == method.id,
            ScheduledPayment.status.in_(OPEN_STATUSES),
        )
        .limit(1)
    )
    return scheduled.first() is not None
