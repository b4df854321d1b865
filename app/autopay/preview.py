"""Why AutoPay will, or will not, pay each open invoice: the question clients ask most."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.autopay.schemas import AutopayPreview, AutopayPreviewItem
from app.autopay.service import covered_amounts, load_setting
from app.models import Invoice, ScheduledPayment

PREVIEW_LIMIT = 200


async def autopay_preview(
    session: AsyncSession, tenant_id: uuid.UUID, client_id: uuid.UUID
) -> AutopayPreview:
    setting, categories = await load_setting(session, client_id)
    enabled = bool(setting and setting.enabled)
    invoices = list(
        (
            await session.execute(
                select(Invoice)
                .where(
                    Invoice.tenant_id == tenant_id,
                    Invoice.client_id == client_id,
                    Invoice.status == "open",
                )
                .order_by(Invoice.due_date, Invoice.id)
                .limit(PREVIEW_LIMIT)
            )
        ).scalars()
    )
    ids = [i.id for i in invoices]
    covered = await covered_amounts(session, ids, categories)
    latest: dict[uuid.UUID, ScheduledPayment] = {}
    if ids:
        rows = await session.execute(
            select(ScheduledPayment)
            .where(ScheduledPayment.invoice_id.in_(ids), ScheduledPayment.origin == "autopay")
            .order_by(ScheduledPayment.created_at)
        )
        for payment in rows.scalars():
            latest[payment.invoice_id] = payment
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
