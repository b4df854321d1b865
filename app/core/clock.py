"""The one source of "now", so tests can move time without sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def utcnow() -> datetime:
    return _now()


def today_in(timezone: str) -> date:
    return utcnow().astimezone(ZoneInfo(timezone)).date()


class FrozenClock:
    """A controllable clock for tests: `with FrozenClock(at) as clock: clock.advance(days=1)`."""

    def __init__(self, at: datetime) -> None:
        self.now = at if at.tzinfo else at.replace(tzinfo=UTC)
        self._previous: Callable[[], datetime] | None = None

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def __enter__(self) -> FrozenClock:
        global _now
        self._previous = _now
        _now = lambda: self.now  # noqa: E731
        return self

    def __exit__(self, *exc: object) -> None:
        global _now
        assert self._previous is not None
        _now = self._previous
