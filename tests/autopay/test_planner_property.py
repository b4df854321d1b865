"""The AutoPay planner (app/autopay/planner.py) for random rule sets, invoices and lines
(hypothesis, deterministic): every line is paid by at most one rule, the first enabled one
covering its category under its cap; what is planned never exceeds what may be scheduled;
each run date is the rule's, never in the past."""

from __future__ import annotations

import calendar
import uuid
from datetime import date, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.autopay.planner import InvoiceFacts, Line, Plan, Rule, plan_invoice

CATEGORIES = [uuid.UUID(int=n) for n in range(1, 5)]
METHODS = [uuid.UUID(int=100 + n) for n in range(3)]
DAYS = st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31))
# Round amounts often, so that an invoice's total is often exactly a rule's cap.
AMOUNTS = st.sampled_from([0, 100, 250, 1_000]) | st.integers(0, 10_000)
CAPS = st.one_of(
    st.none(), st.none(), st.sampled_from([100, 250, 350, 1_000, 1_250]), st.integers(1, 40_000)
)


@st.composite
def rules(draw: st.DrawFn) -> list[Rule]:
    found = []
    # Mostly several enabled rules covering something, so that rules share an invoice.
    for n in range(draw(st.sampled_from([0, 1, 2, 3, 3, 4, 4, 5, 5]))):
        on = draw(st.sampled_from(["days_before_due", "days_after_issue", "day_of_month"]))
        days = draw(st.integers(1, 31) if on == "day_of_month" else st.integers(0, 60))
        found.append(
            Rule(
                id=uuid.UUID(int=1_000 + n),
                enabled=draw(st.sampled_from([True, True, True, False])),
                payment_method_id=draw(st.sampled_from(METHODS)),
                category_ids=frozenset(
                    draw(
                        st.sets(
                            st.sampled_from(CATEGORIES),
                            min_size=draw(st.sampled_from([0, 1, 1])),
                            max_size=2,
                        )
                    )
                ),
                run_on=on,
                run_days=days,
                max_invoice_total=draw(CAPS),
            )
        )
    return found


@st.composite
def invoices(draw: st.DrawFn) -> tuple[list[Line], InvoiceFacts, date]:
    lines = draw(
        st.lists(
            st.builds(Line, st.sampled_from(CATEGORIES), AMOUNTS),
            min_size=draw(st.sampled_from([0, 2, 4])),
            max_size=8,
        )
    )
    total = sum(line.amount for line in lines)
    issued = draw(DAYS)
    today = issued + timedelta(days=draw(st.integers(0, 90)))
    facts = InvoiceFacts(
        total=total,
        # All of it, or what other payments leave.
        schedulable=draw(st.just(total) | st.integers(0, total)),
        due_date=issued + timedelta(days=draw(st.integers(0, 60))),
        issued_on=issued,
    )
    return lines, facts, today


def first_payer(rules: list[Rule], line: Line, total: int) -> Rule | None:
    """The contract, said plainly: the first enabled rule covering the line, under its cap."""
    for rule in rules:
        capped = rule.max_invoice_total is not None and total > rule.max_invoice_total
        if rule.enabled and line.category_id in rule.category_ids and not capped:
            return rule
    return None


def expected_day(rule: Rule, facts: InvoiceFacts, today: date) -> date:
    assert facts.issued_on is not None
    if rule.run_on == "days_before_due":
        return max(facts.due_date - timedelta(days=rule.run_days), today)
    if rule.run_on == "days_after_issue":
        return max(facts.issued_on + timedelta(days=rule.run_days), today)
    start = max(facts.issued_on, today)
    for month in range(2):  # this month's day, or next month's
        year, index = divmod(start.month - 1 + month, 12)
        last = calendar.monthrange(start.year + year, index + 1)[1]
        day = date(start.year + year, index + 1, min(rule.run_days, last))
        if day >= start:
            return day
    raise AssertionError("a day of the month is at most a month away")


AT_THE_CAP = (
    [
        Rule(
            id=uuid.UUID(int=1_000),
            enabled=True,
            payment_method_id=METHODS[0],
            category_ids=frozenset(CATEGORIES[:1]),
            run_on="days_before_due",
            run_days=0,
            max_invoice_total=1_250,
        )
    ],
    (
        [Line(CATEGORIES[0], 1_000), Line(CATEGORIES[1], 250)],
        InvoiceFacts(1_250, 1_250, date(2026, 3, 20), date(2026, 3, 2)),
        date(2026, 3, 2),
    ),
)


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(rules=rules(), invoice=invoices())
@example(*AT_THE_CAP)  # a total equal to the cap is not over it
def test_each_line_is_paid_by_at_most_one_rule_and_never_more_than_may_be_scheduled(
    rules: list[Rule], invoice: tuple[list[Line], InvoiceFacts, date]
) -> None:
    lines, facts, today = invoice
    plan: Plan = plan_invoice(rules, lines, facts, today)

    # Each line is counted once: by the rule that pays it, or as left out (and why).
    owed: dict[uuid.UUID, int] = {}
    left = {"not_covered": 0, "over_cap": 0}
    for line in lines:
        payer = first_payer(rules, line, facts.total)
        if payer is not None:
            owed[payer.id] = owed.get(payer.id, 0) + line.amount
        elif any(line.category_id in r.category_ids and r.enabled for r in rules):
            left["over_cap"] += line.amount
        else:
            left["not_covered"] += line.amount
    assert plan.covered == sum(owed.values())
    assert {k: v for k, v in left.items() if v} == {k: v for k, v in plan.left_out.items() if v}
    assert plan.covered + sum(plan.left_out.values()) == facts.total

    # One payment per paying rule, in rule order, never more than its lines, and all of them
    # together never more than may be scheduled: the first rules get theirs first.
    by_id = {r.id: r for r in rules}
    paid = [p.rule_id for p in plan.payments]
    assert len(paid) == len(set(paid))
    assert paid == [r.id for r in rules if r.id in set(paid)]
    room = facts.schedulable
    for rule in rules:
        wanted = min(owed.get(rule.id, 0), room)
        room -= wanted
        found = [p for p in plan.payments if p.rule_id == rule.id]
        assert [p.amount for p in found] == ([wanted] if wanted > 0 else [])
    assert sum(p.amount for p in plan.payments) <= facts.schedulable

    for payment in plan.payments:
        rule = by_id[payment.rule_id]
        assert payment.amount > 0
        assert payment.payment_method_id == rule.payment_method_id
        assert payment.day == expected_day(rule, facts, today) >= today
        # The rules passed over for their cap come before it and cover one of its lines.
        for skipped in payment.over_cap_of:
            earlier = by_id[skipped]
            assert rules.index(earlier) < rules.index(rule)
            assert earlier.enabled and earlier.max_invoice_total is not None
            assert facts.total > earlier.max_invoice_total
            assert any(
                line.category_id in earlier.category_ids
                and first_payer(rules, line, facts.total) is rule
                for line in lines
            )
