"""AutoPay: a client's ordered rules, and the scheduled payments they make.

Turning AutoPay on or changing its rules (re)plans every open invoice of the client; issuing an
invoice plans that one. Planning (`planner.py`) says what each rule pays and when; here the
client's AutoPay payments that have not started are brought in line: created, changed or
canceled. Payments already being charged, or paid, are left as they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.autopay.planner import InvoiceFacts, Plan, Planned, plan_invoice
from app.autopay.repository import OPEN_STATUSES, AutopayRepository, AutopayView
from app.autopay.schemas import AutopayIn, AutopayOut, AutopayRuleIn, AutopayRuleOut, RunDate
from app.consents.service import Origin, record_consent
from app.core.clock import today_in, utcnow
from app.core.errors import Conflict, Forbidden, Unprocessable
from app.core.etag import check_if_match
from app.core.events import record_event
from app.core.principal import ClientPrincipal, Principal
from app.models import AutopayRule, AutopaySetting, Invoice, PaymentMethod, ScheduledPayment
from app.scheduled_payments import service as scheduled
from app.scheduled_payments.rules import start_of_day
from app.tenancy.repository import ServiceCategoryRepository, TenantRepository
from app.tickets.repository import TicketRepository


class AutopayLocked(Conflict):
    type_slug = "autopay-locked"
    title = "AutoPay locked"
    default_detail = "Your provider has locked AutoPay for your account: ask them to change it."


def present(client_id: uuid.UUID, view: AutopayView) -> AutopayOut:
    rules = [
        AutopayRuleOut(
            id=r.id,
            position=r.position,
            enabled=r.enabled,
            payment_method_id=r.payment_method_id,
            service_category_ids=sorted(view.categories.get(r.id, set()), key=str),
            run=RunDate(on=r.run_on, days=r.run_days),
            max_invoice_total=r.max_invoice_total,
        )
        for r in view.rules
    ]
    first = rules[0] if rules else None
    return AutopayOut(
        client_id=client_id,
        enabled=view.enabled,
        locked=bool(view.setting and view.setting.locked),
        rules=rules,
        payment_method_id=first.payment_method_id if first else None,
        service_category_ids=first.service_category_ids if first else [],
        days_before_due=first.run.days if first and first.run.on == "days_before_due" else 0,
        updated_at=view.setting.updated_at if view.setting else None,
    )


async def replace_setting(
    session: AsyncSession,
    acting: ClientPrincipal,
    data: AutopayIn,
    *,
    if_match: str | None,
    origin: Origin,
) -> AutopayView:
    repo = AutopayRepository(session, acting)
    view = await repo.view(acting.client_id, for_update=True)
    check_if_match(if_match, view.setting.version if view.setting else 0)
    staff = acting.is_staff
    if view.setting is not None and view.setting.locked and not staff:
        raise AutopayLocked()
    if data.locked is not None and not staff:
        raise Forbidden("Only your provider's staff can lock or unlock AutoPay.")
    wanted = _rules_wanted(view, data)
    await _validate(session, acting, data, wanted)
    if data.enabled and not view.enabled:
        await record_consent(session, acting, "autopay", data.consent, origin)
    setting = view.setting
    if setting is None:
        setting = AutopaySetting(tenant_id=acting.tenant_id, client_id=acting.client_id, version=0)
        repo.add(setting)
    setting.enabled = data.enabled
    if data.locked is not None:
        setting.locked = data.locked
    setting.version = (setting.version or 0) + 1
    setting.updated_at = utcnow()
    await session.flush()
    await repo.replace_rules(setting, view.rules, [_rule(r) for r in wanted])
    view = await repo.view(acting.client_id)
    await reschedule(
        session, acting, view, await repo.open_invoices(acting.client_id, for_update=True)
    )
    await session.flush()
    record_event(
        session,
        tenant_id=acting.tenant_id,
        client_id=acting.client_id,
        type="autopay.updated",
        subject_type="autopay",
        subject_id=setting.id,
        data=present(acting.client_id, view).model_dump(mode="json"),
    )
    return view


def _rules_wanted(view: AutopayView, data: AutopayIn) -> list[AutopayRuleIn]:
    """The whole new list: `rules` as given, or the v1 fields as the first rule (none when they
    name no method) followed by the rules after it."""
    if data.rules is not None:
        return data.rules
    rest = [
        AutopayRuleIn(
            enabled=r.enabled,
            payment_method_id=r.payment_method_id,
            service_category_ids=sorted(view.categories.get(r.id, set()), key=str),
            run=RunDate(on=r.run_on, days=r.run_days),
            max_invoice_total=r.max_invoice_total,
        )
        for r in view.rules[1:]
    ]
    if data.payment_method_id is None:
        return rest
    first = AutopayRuleIn.model_construct(
        enabled=True,
        payment_method_id=data.payment_method_id,
        service_category_ids=data.service_category_ids or [],
        run=RunDate(on="days_before_due", days=data.days_before_due or 0),
        max_invoice_total=None,
    )
    return [first, *rest]


async def _validate(
    session: AsyncSession, acting: ClientPrincipal, data: AutopayIn, rules: list[AutopayRuleIn]
) -> None:
    v1 = data.rules is None
    where = ("body",) if v1 else ("body", "rules")
    if data.enabled and not any(r.enabled for r in rules):
        if v1:
            raise Unprocessable(
                "Choose the payment method AutoPay should use.", loc=("body", "payment_method_id")
            )
        raise Unprocessable("Turning AutoPay on needs at least one enabled rule.", loc=where)
    categories = ServiceCategoryRepository(session, acting)
    for index, rule in enumerate(rules):
        at = where if v1 else (*where, index)
        await scheduled.live_method(
            session, acting, rule.payment_method_id, loc=(*at, "payment_method_id")
        )
        if not rule.service_category_ids and rule.enabled and data.enabled:
            raise Unprocessable(
                "Choose at least one service category for AutoPay to cover.",
                loc=(*at, "service_category_ids"),
            )
        known = await categories.existing_ids(set(rule.service_category_ids))
        for position, category in enumerate(rule.service_category_ids):
            if category not in known:
                raise Unprocessable(
                    "No such service category.", loc=(*at, "service_category_ids", position)
                )


def _rule(data: AutopayRuleIn) -> tuple[AutopayRule, set[uuid.UUID]]:
    rule = AutopayRule(
        enabled=data.enabled,
        payment_method_id=data.payment_method_id,
        run_on=data.run.on,
        run_days=data.run.days,
        max_invoice_total=data.max_invoice_total,
    )
    return rule, set(data.service_category_ids)


async def reschedule(
    session: AsyncSession, principal: Principal, view: AutopayView, invoices: Sequence[Invoice]
) -> None:
    """Bring AutoPay's waiting payments for `invoices` in line with the client's rules."""
    if not invoices:
        return
    repo = AutopayRepository(session, principal)
    ids = [i.id for i in invoices]
    payments = await repo.payments_of(ids, for_update=True)
    lines = await repo.lines(ids)
    disputed = await TicketRepository(session, principal).open_disputes(ids)
    timezone = (await TenantRepository(session, principal).current()).timezone
    today = today_in(timezone)
    rules = view.plan_rules() if view.enabled else []
    for invoice in invoices:
        mine = [p for p in payments if p.invoice_id == invoice.id]
        plan = plan_invoice(rules, lines.get(invoice.id, []), facts_of(invoice, mine), today)
        _follow_plan(
            session,
            invoice,
            plan,
            mine,
            timezone,
            disputed=invoice.id in disputed,
            turned_off=not view.enabled,
        )


def facts_of(invoice: Invoice, payments: Sequence[ScheduledPayment]) -> InvoiceFacts:
    """What AutoPay may still schedule: the balance, less the client's own open payments and
    AutoPay's already being charged."""
    taken = sum(
        p.amount
        for p in payments
        if p.status in OPEN_STATUSES and (p.origin != "autopay" or p.status == "processing")
    )
    return InvoiceFacts(
        total=invoice.total,
        schedulable=max(0, invoice.balance - taken),
        due_date=invoice.due_date,
        issued_on=invoice.issued_on,
    )


def _follow_plan(
    session: AsyncSession,
    invoice: Invoice,
    plan: Plan,
    payments: Sequence[ScheduledPayment],
    timezone: str,
    *,
    disputed: bool,
    turned_off: bool,
) -> None:
    # One waiting payment per rule follows the plan. The payments of rules dropped from the
    # list (their rule_id is set to NULL) are all left over, however many there are.
    waiting: dict[uuid.UUID, ScheduledPayment] = {}
    orphans: list[ScheduledPayment] = []
    for p in payments:
        if p.origin == "autopay" and p.status in ("scheduled", "on_hold"):
            if p.rule_id is None or p.rule_id in waiting:
                orphans.append(p)
            else:
                waiting[p.rule_id] = p
    busy_or_done = {
        p.rule_id
        for p in payments
        if p.origin == "autopay" and p.status in ("processing", "succeeded")
    }
    for planned in plan.payments:
        why = _why(planned)
        existing = waiting.pop(planned.rule_id, None)
        if existing is not None:
            if (existing.amount, existing.scheduled_for, existing.payment_method_id) != (
                planned.amount,
                planned.day,
                planned.payment_method_id,
            ):
                scheduled.follow_autopay(
                    session,
                    existing,
                    amount=planned.amount,
                    day=planned.day,
                    starts_at=start_of_day(planned.day, timezone),
                    method_id=planned.payment_method_id,
                    event_data=why,
                )
        elif planned.rule_id not in busy_or_done and not _failed_on(
            payments, planned.rule_id, planned.payment_method_id
        ):
            scheduled.schedule(
                session,
                invoice=invoice,
                method_id=planned.payment_method_id,
                amount=planned.amount,
                day=planned.day,
                timezone=timezone,
                origin="autopay",
                rule_id=planned.rule_id,
                disputed=disputed,
                event_data=why,
            )
    reason = (
        "AutoPay was turned off"
        if turned_off
        else ("AutoPay no longer covers this invoice's services")
    )
    for leftover in [*waiting.values(), *orphans]:
        scheduled.cancel(session, leftover, reason)


def _why(planned: Planned) -> dict[str, object]:
    """What the payment's event says about its rule: which one pays, and the earlier rules
    passed over because the invoice's total is over their cap."""
    why: dict[str, object] = {"rule_id": str(planned.rule_id)}
    if planned.over_cap_of:
        why["over_cap_of"] = [str(rule_id) for rule_id in planned.over_cap_of]
    return why


def _failed_on(
    payments: Sequence[ScheduledPayment], rule_id: uuid.UUID, method_id: uuid.UUID
) -> bool:
    """AutoPay already failed for good on this invoice with this rule and method: replanning
    must not charge the same card again (a new method, or a manual retry, may)."""
    return any(
        p.origin == "autopay"
        and p.status == "failed"
        and p.rule_id == rule_id
        and p.payment_method_id == method_id
        for p in payments
    )


# -- hooks: other domains' transactions ------------------------------------------------------


async def schedule_for_issued_invoice(
    session: AsyncSession, principal: Principal, invoice: Invoice
) -> None:
    """An invoice issued to a client with AutoPay on gets its payments."""
    if invoice.status != "open":
        return
    view = await AutopayRepository(session, principal).view(invoice.client_id)
    if view.enabled:
        await reschedule(session, principal, view, [invoice])


async def cancel_for_voided_invoice(
    session: AsyncSession, principal: Principal, invoice: Invoice
) -> None:
    """Nothing is left to pay, so nothing stays scheduled (AutoPay's or the client's own)."""
    waiting = await AutopayRepository(session, principal).payments_of([invoice.id], for_update=True)
    for payment in waiting:
        if payment.status in ("scheduled", "on_hold"):
            scheduled.cancel(session, payment, "the invoice was voided")


async def rules_use_method(
    session: AsyncSession, principal: Principal, method: PaymentMethod
) -> bool:
    """A method an enabled AutoPay rule pays with cannot be deleted."""
    return await AutopayRepository(session, principal).enabled_rules_using(method.id)
