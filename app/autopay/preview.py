"""Why AutoPay will, or will not, pay each open invoice: the question clients ask most."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.autopay.repository import AutopayRepository
from app.autopay.schemas import AutopayPreview, AutopayPreviewItem
from app.core.principal import Principal
from app.models import Invoice, ScheduledPayment


async def autopay_preview(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID
) -> AutopayPreview:
    repo = AutopayRepository(session, principal)
    setting, categories = await repo.setting(client_id)
    enabled = bool(setting and setting.enabled)
    invoices = await repo.open_invoices(client_id)
    ids = [i.id for i in invoices]
    covered = await repo.covered_amounts(ids, categories)
    latest = await repo.latest_autopay_payments(ids)
    items = [
        _explain(invoice, covered.get(invoice.id, 0), latest.get(invoice.id), enabled)
        for invoice in invoices
    ]
    return AutopayPreview(enabled=enabled, items=items)


def _explain(
    invoice: Invoice, covered: int, payment: ScheduledPayment | None, enabled: bool
) -> AutopayPreviewItem:
    item = AutopayPreviewItem(
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        due_date=invoice.due_date,
        balance=invoice.balance,
        currency=invoice.currency,
        covered_amount=covered,
        will_pay=False,
        state="not_scheduled",
        reason="",
    )
    if payment is not None:
        item.scheduled_payment_id = payment.id
        item.amount = payment.amount
        item.scheduled_for = payment.scheduled_for
        item.payment_method_id = payment.payment_method_id
        if payment.status in ("scheduled", "processing"):
            item.will_pay = True
            item.state = "scheduled" if payment.status == "scheduled" else "processing"
            item.reason = (
                f"AutoPay will pay {payment.amount} on {payment.scheduled_for.isoformat()}."
                if payment.status == "scheduled"
                else "AutoPay is paying it now."
            )
            return item
        if payment.status == "succeeded":
            item.state, item.reason = "paid", "AutoPay paid its covered lines."
            return item
        if payment.status == "failed":
            item.state = "failed"
            item.reason = f"AutoPay's payment failed: {payment.failure_reason or 'declined'}."
            return item
        item.state = "canceled"
        item.reason = f"AutoPay's payment was canceled: {payment.cancel_reason or 'canceled'}."
        return item
    if not enabled:
        item.state, item.reason = "off", "AutoPay is off."
    elif covered == 0:
        item.state = "not_covered"
        item.reason = "None of its lines is in a service category AutoPay covers."
    else:
        item.reason = "It was issued before AutoPay covered it; pay it now or schedule a payment."
    return item
