"""AutoPay: one setting per client, and the scheduled payments it makes when invoices are
issued. Changing the setting changes the payments it made that have not started."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.autopay.repository import AutopayRepository
from app.autopay.schemas import AutopayIn, AutopayOut
from app.core.clock import today_in, utcnow
from app.core.errors import Unprocessable
from app.core.etag import check_if_match
from app.core.principal import ClientPrincipal, Principal
from app.models import AutopaySetting, Invoice, PaymentMethod
from app.scheduled_payments import service as scheduled
from app.scheduled_payments.repository import ScheduledPaymentRepository
from app.scheduled_payments.rules import autopay_date, start_of_day
from app.tenancy.repository import ServiceCategoryRepository, TenantRepository


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
    session: AsyncSession, principal: ClientPrincipal, data: AutopayIn, *, if_match: str | None
) -> tuple[AutopaySetting, set[uuid.UUID]]:
    client_id = principal.client_id
    repo = AutopayRepository(session, principal)
    setting, old_categories = await repo.setting(client_id, for_update=True)
    check_if_match(if_match, setting.version if setting else 0)
    await _validate(session, principal, data)
    if setting is None:
        setting = AutopaySetting(tenant_id=principal.tenant_id, client_id=client_id, version=0)
        repo.add(setting)
    old_method = setting.payment_method_id
    setting.enabled = data.enabled
    setting.payment_method_id = data.payment_method_id
    setting.days_before_due = data.days_before_due
    setting.version = (setting.version or 0) + 1
    setting.updated_at = utcnow()
    await session.flush()
    categories = set(data.service_category_ids)
    if categories != old_categories:
        await repo.replace_categories(setting, categories)
    await _follow(
        session, principal, setting, categories, method_changed=old_method != data.payment_method_id
    )
    await session.flush()
    return setting, categories


async def _validate(session: AsyncSession, principal: ClientPrincipal, data: AutopayIn) -> None:
    if data.payment_method_id is not None:
        await scheduled.live_method(session, principal, data.payment_method_id)
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
            scheduled.cancel(session, payment, "AutoPay was turned off")
        return
    timezone = (await TenantRepository(session, principal).current()).timezone
    today = today_in(timezone)
    repo = AutopayRepository(session, principal)
    invoices = await repo.invoices({p.invoice_id for p in pending})
    covered = await repo.covered_amounts(list(invoices), categories)
    assert setting.payment_method_id is not None, "AutoPay on has a method"
    for payment in pending:
        invoice = invoices[payment.invoice_id]
        amount = min(covered.get(invoice.id, 0), invoice.balance)
        if amount <= 0:
            scheduled.cancel(session, payment, "AutoPay no longer covers this invoice's services")
            continue
        day = autopay_date(invoice.due_date, setting.days_before_due, today)
        changed = (
            amount != payment.amount
            or day != payment.scheduled_for
            or (method_changed and payment.payment_method_id != setting.payment_method_id)
        )
        if changed:
            scheduled.follow_autopay(
                session,
                payment,
                amount=amount,
                day=day,
                starts_at=start_of_day(day, timezone),
                method_id=setting.payment_method_id,
            )


async def schedule_for_issued_invoice(
    session: AsyncSession, principal: Principal, invoice: Invoice
) -> None:
    """The issue hook: an invoice issued to a client with AutoPay on gets its payment."""
    if invoice.status != "open":
        return
    repo = AutopayRepository(session, principal)
    setting, categories = await repo.setting(invoice.client_id)
    if setting is None or not setting.enabled or setting.payment_method_id is None:
        return
    covered = (await repo.covered_amounts([invoice.id], categories)).get(invoice.id, 0)
    amount = min(covered, invoice.balance)
    if amount <= 0:
        return
    timezone = (await TenantRepository(session, principal).current()).timezone
    scheduled.schedule(
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
    waiting = await ScheduledPaymentRepository(session, principal).for_invoices(
        [invoice.id], statuses=("scheduled",), for_update=True
    )
    for payment in waiting:
        scheduled.cancel(session, payment, "the invoice was voided")


async def method_in_use(session: AsyncSession, principal: Principal, method: PaymentMethod) -> bool:
    """A method AutoPay or an unfinished scheduled payment relies on cannot be deleted."""
    return await ScheduledPaymentRepository(session, principal).method_in_use(method.id)
