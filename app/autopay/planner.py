"""What AutoPay pays on one invoice, as a pure function of its rules and the invoice.

Each line goes to the first enabled rule that covers its service category and whose cap the
invoice's total does not exceed; a rule's lines become one payment on the rule's run date with
its method. What the payments add up to never exceeds what the invoice still owes beyond
payments scheduled otherwise; the first rules get theirs first.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from app.scheduled_payments.rules import autopay_date


@dataclass(frozen=True, slots=True)
class Rule:
    id: uuid.UUID
    enabled: bool
    payment_method_id: uuid.UUID
    category_ids: frozenset[uuid.UUID]
    run_on: str
    run_days: int
    max_invoice_total: int | None


@dataclass(frozen=True, slots=True)
class Line:
    category_id: uuid.UUID
    amount: int


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    total: int
    # What may still be scheduled: the balance less what other payments already schedule.
    schedulable: int
    due_date: date
    issued_on: date | None


@dataclass(frozen=True, slots=True)
class Planned:
    rule_id: uuid.UUID
    payment_method_id: uuid.UUID
    amount: int
    day: date
    # Earlier rules that cover some of these lines but were passed over: the invoice's total
    # is over their cap (what the preview and the payment's event tell the client).
    over_cap_of: tuple[uuid.UUID, ...] = ()


@dataclass
class Plan:
    payments: list[Planned] = field(default_factory=list)
    # Lines no rule took, and why: "not_covered" or "over_cap".
    left_out: dict[str, int] = field(default_factory=dict)
    covered: int = 0


def plan_invoice(
    rules: Sequence[Rule], lines: Sequence[Line], invoice: InvoiceFacts, today: date
) -> Plan:
    plan = Plan()
    by_rule: dict[uuid.UUID, int] = {}
    passed_over: dict[uuid.UUID, list[uuid.UUID]] = {}
    for line in lines:
        rule, why, capped = _rule_for(rules, line, invoice.total)
        if rule is None:
            plan.left_out[why] = plan.left_out.get(why, 0) + line.amount
            continue
        by_rule[rule.id] = by_rule.get(rule.id, 0) + line.amount
        skipped = passed_over.setdefault(rule.id, [])
        skipped.extend(c for c in capped if c not in skipped)
    plan.covered = sum(by_rule.values())
    room = invoice.schedulable
    for rule in rules:
        wanted = by_rule.get(rule.id, 0)
        amount = min(wanted, room)
        if amount <= 0:
            continue
        room -= amount
        plan.payments.append(
            Planned(
                rule.id,
                rule.payment_method_id,
                amount,
                run_date(rule, invoice, today),
                tuple(passed_over.get(rule.id, ())),
            )
        )
    return plan


def _rule_for(
    rules: Sequence[Rule], line: Line, total: int
) -> tuple[Rule | None, str, list[uuid.UUID]]:
    """The rule that pays the line (or None and why not), and the rules before it that cover
    the line but whose cap the invoice's total is over."""
    capped: list[uuid.UUID] = []
    for rule in rules:
        if not rule.enabled or line.category_id not in rule.category_ids:
            continue
        if rule.max_invoice_total is not None and total > rule.max_invoice_total:
            capped.append(rule.id)  # a later rule covering the line may still take it
            continue
        return rule, "", capped
    return None, ("over_cap" if capped else "not_covered"), capped


def run_date(rule: Rule, invoice: InvoiceFacts, today: date) -> date:
    """The rule's day for this invoice, never before today."""
    if rule.run_on == "days_before_due":
        return autopay_date(invoice.due_date, rule.run_days, today)
    if rule.run_on == "days_after_issue":
        return max((invoice.issued_on or today) + timedelta(days=rule.run_days), today)
    return next_day_of_month(max(invoice.issued_on or today, today), rule.run_days)


def next_day_of_month(start: date, day: int) -> date:
    """The first date on or after `start` that is day `day` of its month (the last day of a
    shorter month)."""
    candidate = _in_month(start.year, start.month, day)
    if candidate >= start:
        return candidate
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return _in_month(year, month, day)


def _in_month(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))
