"""Each run-date option of an AutoPay rule under a frozen clock: days before the due date, days
after the issue date, a day of the month (the month's last day when it is shorter: 29-31 in
February, 31 in April; across a year end), never a day in the past."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.scheduled_payments.rules import start_of_day
from tests.autopay.helpers import at, autopay_plan, autopay_rows, issued_on, rule, set_rules
from tests.scheduling.helpers import Scene


async def _plan_of(
    scene: Scene,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
    run: dict[str, Any],
    *,
    issued: date,
    due: date,
) -> date:
    """AutoPay on (one rule for hosting, run as given) and an invoice issued on `issued`: the
    day AutoPay pays it."""
    clock.now = at(issued)
    await set_rules(scene, rule(scene.card, scene.hosting, **run))
    invoice = await issued_on(scene, clock, issued, (scene.hosting, 4_200), due=due)
    ((amount, day, method),) = await autopay_plan(sessionmaker, invoice["id"])
    assert (amount, method) == (4_200, scene.card["id"])
    (row,) = await autopay_rows(sessionmaker, invoice["id"])
    assert row.next_attempt_at == start_of_day(day, "UTC")
    return day


FAR = date(2027, 6, 1)  # a due date that plays no part

CASES = [
    # days before the due date
    ("days_before_due", 3, date(2026, 3, 2), date(2026, 3, 20), date(2026, 3, 17)),
    ("days_before_due", 0, date(2026, 3, 2), date(2026, 3, 20), date(2026, 3, 20)),
    ("days_before_due", 5, date(2026, 12, 20), date(2027, 1, 3), date(2026, 12, 29)),
    # due sooner than the days allow: today, never the past
    ("days_before_due", 10, date(2026, 3, 2), date(2026, 3, 5), date(2026, 3, 2)),
    # days after the issue date, across a month's end and a year's end
    ("days_after_issue", 7, date(2026, 3, 2), FAR, date(2026, 3, 9)),
    ("days_after_issue", 0, date(2026, 3, 2), FAR, date(2026, 3, 2)),
    ("days_after_issue", 3, date(2026, 2, 27), FAR, date(2026, 3, 2)),
    ("days_after_issue", 7, date(2026, 12, 28), FAR, date(2027, 1, 4)),
    # a day of the month: this month's, today's, or (just missed) next month's
    ("day_of_month", 15, date(2026, 3, 2), FAR, date(2026, 3, 15)),
    ("day_of_month", 15, date(2026, 3, 15), FAR, date(2026, 3, 15)),
    ("day_of_month", 15, date(2026, 3, 16), FAR, date(2026, 4, 15)),
    # short months: the 29th, 30th and 31st are February's last day (the 29th in a leap year)
    ("day_of_month", 29, date(2026, 2, 10), FAR, date(2026, 2, 28)),
    ("day_of_month", 30, date(2026, 2, 10), FAR, date(2026, 2, 28)),
    ("day_of_month", 31, date(2026, 2, 10), FAR, date(2026, 2, 28)),
    ("day_of_month", 29, date(2028, 2, 10), FAR, date(2028, 2, 29)),
    ("day_of_month", 31, date(2028, 2, 10), FAR, date(2028, 2, 29)),
    # ... the 31st is April's 30th; the 30th after January's has passed is February's last
    ("day_of_month", 31, date(2026, 4, 5), FAR, date(2026, 4, 30)),
    ("day_of_month", 30, date(2026, 1, 31), FAR, date(2026, 2, 28)),
    ("day_of_month", 31, date(2026, 1, 31), FAR, date(2026, 1, 31)),
    # across the year's end
    ("day_of_month", 5, date(2026, 12, 20), FAR, date(2027, 1, 5)),
    ("day_of_month", 31, date(2026, 12, 31), FAR, date(2026, 12, 31)),
    ("day_of_month", 1, date(2026, 12, 31), FAR, date(2027, 1, 1)),
]


@pytest.mark.parametrize(("on", "days", "issued", "due", "expected"), CASES)
async def test_the_run_date_of_each_option(
    scene: Scene,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
    on: str,
    days: int,
    issued: date,
    due: date,
    expected: date,
) -> None:
    run = {"on": on, "days": days}
    assert await _plan_of(scene, clock, sessionmaker, run, issued=issued, due=due) == expected


async def test_rules_turned_on_later_never_date_a_payment_in_the_past(
    scene: Scene, clock: FrozenClock, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Invoices issued before AutoPay was on are planned when it is turned on: a run date that
    has passed by then is today."""
    after_issue = await issued_on(
        scene, clock, date(2026, 3, 2), (scene.hosting, 100), due=date(2026, 3, 30)
    )
    of_month = await issued_on(
        scene, clock, date(2026, 3, 3), (scene.helpdesk, 200), due=date(2026, 3, 30)
    )
    clock.now = at(date(2026, 3, 20))
    await set_rules(
        scene,
        rule(scene.card, scene.hosting, on="days_after_issue", days=7),  # March 9: passed
        rule(scene.card, scene.helpdesk, on="day_of_month", days=5),  # next is April 5
    )

    assert await autopay_plan(sessionmaker, after_issue["id"]) == [
        (100, date(2026, 3, 20), scene.card["id"])
    ]
    assert await autopay_plan(sessionmaker, of_month["id"]) == [
        (200, date(2026, 4, 5), scene.card["id"])
    ]


async def test_a_rule_changing_its_run_date_moves_its_waiting_payment(
    scene: Scene, clock: FrozenClock, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await set_rules(scene, rule(scene.card, scene.hosting, on="days_before_due", days=2))
    invoice = await scene.invoice((scene.hosting, 900), due=date(2026, 3, 20))
    (before,) = await autopay_rows(sessionmaker, invoice["id"])
    assert before.scheduled_for == date(2026, 3, 18)

    await set_rules(scene, rule(scene.card, scene.hosting, on="day_of_month", days=31))

    (after,) = await autopay_rows(sessionmaker, invoice["id"])
    assert after.id == before.id  # the same payment, moved, not another one
    assert (after.scheduled_for, after.next_attempt_at) == (
        date(2026, 3, 31),
        start_of_day(date(2026, 3, 31), "UTC"),
    )
