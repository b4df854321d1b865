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


# A returned debit may be presented again twice at most (NACHA), and only when it came back
# for want of funds: a closed, unknown or unauthorized account will not pay on a second try.
ACH_MAX_REPRESENTMENTS = 2
ACH_RETRYABLE_CODES = frozenset({"insufficient_funds"})


def next_retry_at(
    now: datetime,
    attempts_made: int,
    retry_days: Sequence[int],
    decline_code: str | None,
    method_type: str = "card",
) -> datetime | None:
    """When to try again after a declined automatic attempt, or None when it failed for good.

    Attempt 1 is the scheduled one; retry n waits `retry_days[n - 1]` days after the attempt
    before it. A hard decline (stolen, lost, fraudulent card; invalid or closed account ...)
    is never retried; a bank debit is presented again at most twice, and only after it was
    returned for insufficient funds.
    """
    if decline_code in HARD_DECLINE_CODES:
        return None
    allowed = len(retry_days)
    if method_type == "ach":
        if decline_code not in ACH_RETRYABLE_CODES:
            return None
        allowed = min(allowed, ACH_MAX_REPRESENTMENTS)
    if attempts_made > allowed:
        return None
    return now + timedelta(days=retry_days[attempts_made - 1])
