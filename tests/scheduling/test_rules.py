"""The date and amount rules of scheduled payments, as pure functions: no database, no real
clock (every "today" and "now" is an argument)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.core.clock import FrozenClock, today_in, utcnow
from app.core.config import Settings
from app.gateways.base import HARD_DECLINE_CODES
from app.gateways.fake import FAKE_TOKENS
from app.payments.charges import run_time_amount
from app.scheduled_payments.rules import (
    autopay_date,
    next_retry_at,
    start_of_day,
)

NOW = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
RETRY_DAYS = (1, 3, 5)


# -- start_of_day ---------------------------------------------------------------------------


def test_start_of_day_in_utc_is_midnight_utc() -> None:
    assert start_of_day(date(2026, 3, 2), "UTC") == datetime(2026, 3, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # Eastern Standard Time (UTC-5) ...
        (date(2026, 1, 15), datetime(2026, 1, 15, 5, tzinfo=UTC)),
        # ... until 02:00 on 8 March 2026: that day still begins in EST ...
        (date(2026, 3, 8), datetime(2026, 3, 8, 5, tzinfo=UTC)),
        # ... and the next begins in EDT (UTC-4).
        (date(2026, 3, 9), datetime(2026, 3, 9, 4, tzinfo=UTC)),
        (date(2026, 7, 4), datetime(2026, 7, 4, 4, tzinfo=UTC)),
        # Back to EST at 02:00 on 1 November: that day begins in EDT, the next in EST.
        (date(2026, 11, 1), datetime(2026, 11, 1, 4, tzinfo=UTC)),
        (date(2026, 11, 2), datetime(2026, 11, 2, 5, tzinfo=UTC)),
    ],
)
def test_start_of_day_in_new_york_follows_daylight_saving(day: date, expected: datetime) -> None:
    assert start_of_day(day, "America/New_York") == expected


def test_a_day_across_spring_forward_is_23_hours_long() -> None:
    zone = "America/New_York"
    length = start_of_day(date(2026, 3, 9), zone) - start_of_day(date(2026, 3, 8), zone)
    assert length == timedelta(hours=23)
    length = start_of_day(date(2026, 11, 2), zone) - start_of_day(date(2026, 11, 1), zone)
    assert length == timedelta(hours=25)


@pytest.mark.parametrize(
    "zone",
    [
        "UTC",
        "America/New_York",
        "Europe/London",
        "Asia/Kolkata",  # +05:30
        "Australia/Lord_Howe",  # a half-hour DST shift
        "Pacific/Kiritimati",  # +14
        "Pacific/Pago_Pago",  # -11
        "America/Santiago",  # DST changes at midnight: some days have no 00:00
        "America/Havana",  # likewise
    ],
)
def test_start_of_day_is_the_first_instant_of_the_local_day(zone: str) -> None:
    """Whatever the zone does around midnight: the instant is on `day` locally and the one
    just before it is on the day before; it is always an aware UTC datetime."""
    tz = ZoneInfo(zone)
    first = date(2026, 1, 1)
    for offset in range(0, 366):
        day = first + timedelta(days=offset)
        start = start_of_day(day, zone)
        assert start.tzinfo is UTC
        assert start.astimezone(tz).date() == day, (zone, day)
        assert (start - timedelta(microseconds=1)).astimezone(tz).date() == day - timedelta(
            days=1
        ), (zone, day)


# -- autopay_date ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "days", "today", "expected"),
    [
        (date(2026, 3, 12), 3, date(2026, 3, 2), date(2026, 3, 9)),
        (date(2026, 3, 12), 0, date(2026, 3, 2), date(2026, 3, 12)),
        (date(2026, 3, 12), 10, date(2026, 3, 2), date(2026, 3, 2)),  # lands on today
        (date(2026, 3, 12), 11, date(2026, 3, 2), date(2026, 3, 2)),  # would be yesterday
        (date(2026, 3, 12), 60, date(2026, 3, 2), date(2026, 3, 2)),
        (date(2026, 2, 20), 0, date(2026, 3, 2), date(2026, 3, 2)),  # already overdue
        (date(2026, 3, 2), 0, date(2026, 3, 2), date(2026, 3, 2)),  # due today
        (date(2026, 3, 31), 30, date(2026, 2, 27), date(2026, 3, 1)),  # across a month end
        (date(2028, 3, 1), 1, date(2028, 1, 1), date(2028, 2, 29)),  # leap day
    ],
)
def test_autopay_date_is_due_minus_days_never_before_today(
    due: date, days: int, today: date, expected: date
) -> None:
    assert autopay_date(due, days, today) == expected


def test_autopay_date_is_never_in_the_past_for_any_input() -> None:
    today = date(2026, 3, 2)
    for due_offset in range(-40, 40):
        for days in (0, 1, 7, 30, 60):
            due = today + timedelta(days=due_offset)
            result = autopay_date(due, days, today)
            assert result >= today
            assert result <= max(due, today)
            if due - timedelta(days=days) >= today:
                assert result == due - timedelta(days=days)


# -- next_retry_at --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts_made", "wait"),
    [(1, timedelta(days=1)), (2, timedelta(days=3)), (3, timedelta(days=5))],
)
def test_each_soft_decline_waits_its_days_after_the_attempt(
    attempts_made: int, wait: timedelta
) -> None:
    assert next_retry_at(NOW, attempts_made, RETRY_DAYS, "insufficient_funds") == NOW + wait


@pytest.mark.parametrize("attempts_made", [4, 5, 100])
def test_once_the_retries_are_spent_it_is_failed(attempts_made: int) -> None:
    assert next_retry_at(NOW, attempts_made, RETRY_DAYS, "insufficient_funds") is None


def test_the_whole_default_schedule_is_four_attempts_over_nine_days() -> None:
    at, attempts = NOW, 0
    times = []
    while True:
        attempts += 1
        times.append(at)
        retry = next_retry_at(at, attempts, RETRY_DAYS, "card_declined")
        if retry is None:
            break
        at = retry
    assert attempts == 4
    assert [t - NOW for t in times] == [timedelta(days=d) for d in (0, 1, 4, 9)]


@pytest.mark.parametrize("code", sorted(HARD_DECLINE_CODES))
def test_a_hard_decline_is_never_retried(code: str) -> None:
    for attempts_made in (1, 2, 3):
        assert next_retry_at(NOW, attempts_made, RETRY_DAYS, code) is None


def test_the_fake_gateways_stolen_and_lost_cards_are_hard_declines() -> None:
    for token in ("tok_chargeDeclinedStolenCard", "tok_chargeDeclinedLostCard"):
        assert FAKE_TOKENS[token].decline_code in HARD_DECLINE_CODES
    for token in ("tok_chargeDeclined", "tok_insufficientFunds"):
        assert FAKE_TOKENS[token].decline_code not in HARD_DECLINE_CODES


@pytest.mark.parametrize(
    "code", ["card_declined", "insufficient_funds", "do_not_honor", "try_again_later", None]
)
def test_soft_or_unknown_declines_are_retried(code: str | None) -> None:
    assert next_retry_at(NOW, 1, RETRY_DAYS, code) == NOW + timedelta(days=1)


def test_the_retry_schedule_is_configurable() -> None:
    assert next_retry_at(NOW, 1, [2], "card_declined") == NOW + timedelta(days=2)
    assert next_retry_at(NOW, 2, [2], "card_declined") is None
    assert next_retry_at(NOW, 1, [], "card_declined") is None
    assert next_retry_at(NOW, 2, [1, 1, 1, 7], "card_declined") == NOW + timedelta(days=1)
    assert next_retry_at(NOW, 4, [1, 1, 1, 7], "card_declined") == NOW + timedelta(days=7)


def test_the_retry_days_setting_defaults_to_1_3_5_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(env="test").scheduler_retry_days == [1, 3, 5]
    monkeypatch.setenv("BILLING_SCHEDULER_RETRY_DAYS", "[2, 4]")
    assert Settings(env="test").scheduler_retry_days == [2, 4]


# -- run_time_amount ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheduled", "balance", "reserved", "expected"),
    [
        (7_000, 10_000, 0, 7_000),  # less than owed: as scheduled
        (10_000, 10_000, 0, 10_000),  # exactly the balance
        (10_000, 6_000, 0, 6_000),  # partly paid meanwhile: capped to the balance
        (10_000, 10_000, 4_000, 6_000),  # another payment in flight holds part of it
        (3_000, 10_000, 4_000, 3_000),
        (10_000, 10_000, 10_000, 0),  # everything held: nothing to charge now
        (10_000, 0, 0, 0),  # paid meanwhile
        (10_000, 5_000, 9_000, 0),  # never negative
    ],
)
def test_run_time_amount_is_capped_to_what_the_invoice_still_owes(
    scheduled: int, balance: int, reserved: int, expected: int
) -> None:
    assert run_time_amount(scheduled, balance, reserved) == expected


# -- the controllable clock the other tests rely on -----------------------------------------


def test_frozen_clock_moves_only_when_told_and_sets_today_per_zone() -> None:
    with FrozenClock(datetime(2026, 3, 2, 3, 0, tzinfo=UTC)) as clock:
        assert utcnow() == datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
        # 03:00 UTC is still the evening before in New York.
        assert today_in("UTC") == date(2026, 3, 2)
        assert today_in("America/New_York") == date(2026, 3, 1)
        clock.advance(hours=2)
        assert today_in("America/New_York") == date(2026, 3, 2)
    assert utcnow() != clock.now  # left: the real clock is back
