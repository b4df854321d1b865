"""Why AutoPay will, or will not, pay each open invoice: the question clients ask most.

For each open invoice (soonest due first): the AutoPay payments it has (one per rule that pays
some of its lines), what they pay, when and with which method; or exactly why not: AutoPay is
off, no rule covers its lines, it is over a rule's cap, it is disputed, the card has expired,
AutoPay failed or was canceled.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.autopay.planner import Plan, plan_invoice
from app.autopay.repository import PREVIEW_LIMIT, AutopayRepository, AutopayView
from app.autopay.schemas import AutopayPreview, AutopayPreviewItem, AutopayPreviewPayment
from app.autopay.service import facts_of
from app.core.clock import today_in
from app.core.principal import Principal
from app.models import Invoice, PaymentMethod, ScheduledPayment
from app.payment_methods.repository import PaymentMethodRepository
from app.tenancy.repository import TenantRepository
from app.tickets.repository import TicketRepository

ACTIVE = ("scheduled", "processing", "on_hold")


async def autopay_preview(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID
) -> AutopayPreview:
    repo = AutopayRepository(session, principal)
    view = await repo.view(client_id)
    invoices = await repo.open_invoices(client_id, limit=PREVIEW_LIMIT)
    ids = [i.id for i in invoices]
    payments = await repo.payments_of(ids)
    lines = await repo.lines(ids)
    disputed = await TicketRepository(session, principal).open_disputes(ids)
    methods = {
        m.id: m
        for m in await PaymentMethodRepository(session, principal).live_for_client(client_id)
    }
    today = today_in((await TenantRepository(session, principal).current()).timezone)
    rules = view.plan_rules() if view.enabled else []
    items = []
    expired = {id_ for id_, m in methods.items() if _expired(m, today.year, today.month)}
    for invoice in invoices:
        its = [p for p in payments if p.invoice_id == invoice.id]
        plan = plan_invoice(rules, lines.get(invoice.id, []), facts_of(invoice, its), today)
        autopays = [p for p in its if p.origin == "autopay"]
        items.append(
            _explain(invoice, plan, autopays, view, methods, invoice.id in disputed, expired)
        )
    return AutopayPreview(enabled=view.enabled, items=items)


def _explain(
    invoice: Invoice,
    plan: Plan,
    payments: Sequence[ScheduledPayment],
    view: AutopayView,
    methods: dict[uuid.UUID, PaymentMethod],
    disputed: bool,
    expired: set[uuid.UUID],
) -> AutopayPreviewItem:
    active = [p for p in payments if p.status in ACTIVE]
    shown = active or list(payments[-1:])
    item = AutopayPreviewItem(
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        due_date=invoice.due_date,
        balance=invoice.balance,
        currency=invoice.currency,
        covered_amount=plan.covered,
        will_pay=False,
        state="not_scheduled",
        reason="",
        payments=[
            AutopayPreviewPayment(
                scheduled_payment_id=p.id,
                rule_id=p.rule_id,
                amount=p.amount,
                scheduled_for=p.scheduled_for,
                payment_method_id=p.payment_method_id,
                status=p.status,
            )
            for p in payments
        ],
    )
    if shown:
        first = shown[0]
        item.scheduled_payment_id = first.id
        item.amount = sum(p.amount for p in active) if active else first.amount
        item.scheduled_for = min(p.scheduled_for for p in shown)
        item.payment_method_id = first.payment_method_id
    if disputed:
        item.state = "disputed"
        item.reason = "A billing dispute about it is open: AutoPay waits until it is closed."
        return item
    if active:
        stale = [methods[p.payment_method_id] for p in active if p.payment_method_id in expired]
        if stale:
            card = stale[0]
            item.state = "method_expired"
            item.reason = (
                f"The {card.brand} card ending {card.last4} expired "
                f"({card.exp_month:02d}/{card.exp_year}): choose another method for AutoPay."
            )
            return item
        item.will_pay = True
        item.state = "processing" if any(p.status == "processing" for p in active) else "scheduled"
        item.reason = (
            "; ".join(
                f"AutoPay will pay {p.amount} on {p.scheduled_for.isoformat()}" for p in active
            )
            + "."
            + _passed_over(invoice, plan, view)
        )
        return item
    latest = payments[-1] if payments else None
    if latest is not None and latest.status == "succeeded":
        item.state, item.reason = "paid", "AutoPay paid its covered lines."
    elif latest is not None and latest.status == "failed":
        item.state = "failed"
        item.reason = f"AutoPay's payment failed: {latest.failure_reason or 'declined'}."
    elif latest is not None and latest.status == "canceled":
        item.state = "canceled"
        item.reason = f"AutoPay's payment was canceled: {latest.cancel_reason or 'canceled'}."
    elif not view.enabled:
        locked = view.setting is not None and view.setting.locked
        item.state = "locked" if locked else "off"
        item.reason = "AutoPay is off" + (" and locked by your provider." if locked else ".")
    elif plan.covered == 0:
        over = "over_cap" in plan.left_out
        item.state = "over_cap" if over else "not_covered"
        item.reason = (
            "Its total is over the cap of every rule that covers its lines."
            if over
            else "None of its lines is in a service category an AutoPay rule covers."
        )
    else:
        item.reason = "What it owes is already scheduled by other payments."
    return item


def _passed_over(invoice: Invoice, plan: Plan, view: AutopayView) -> str:
    """Why an earlier rule does not pay lines it covers (its cap), and what no rule pays."""
    rules = {r.id: r for r in view.rules}
    skipped = dict.fromkeys(rule_id for p in plan.payments for rule_id in p.over_cap_of)
    said = [
        f" Rule {rules[rule_id].position + 1} does not pay it: its total ({invoice.total}) is "
        f"over that rule's cap of {rules[rule_id].max_invoice_total}."
        for rule_id in skipped
        if rule_id in rules
    ]
    if plan.left_out:
        said.append(
            f" Lines of {sum(plan.left_out.values())} are left to pay: no rule covers them"
            + (" under its cap." if "over_cap" in plan.left_out else ".")
        )
    return "".join(said)


def _expired(method: PaymentMethod, year: int, month: int) -> bool:
    if method.exp_year is None or method.exp_month is None:
        return False
    return (method.exp_year, method.exp_month) < (year, month)
