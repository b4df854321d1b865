"""The date and amount rules of scheduled payments, as pure functions of their inputs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.gateways.base import HARD_DECLINE_CODES


def start_of_day(day: date, timezone: str) -> datetime:
    """The instant `day` begins in the tenant's zone, in UTC: when its payments fall due."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def autopay_date(due_date: date, days_before_due: int, today: date) -> date:
    """`due_date - days_before_due`, never in the past."""
    return max(due_date - timedelta(days=days_before_due), today)


def next_retry_at(
    now: datetime, attempts_made: int, retry_days: Sequence[int], decline_code: str | None
) -> datetime | None:
    """When to try again after a declined attempt, or None when it is failed for good.

    Attempt 1 is the scheduled one; retry n waits `retry_days[n - 1]` days after the
    attempt before it. A hard decline (stolen, lost, expired card ...) is never retried.
    """
    if decline_code in HARD_DECLINE_CODES:
        return None
    if attempts_made > len(retry_days):
        return None
    return now + timedelta(days=retry_days[attempts_made - 1])


def run_time_amount(scheduled: int, balance: int, reserved: int) -> int:
    """What an attempt may charge: never more than the invoice still owes, less what other
    payments in flight already hold."""
    return max(0, min(scheduled, balance - reserved))
