"""A work-queue heartbeat beaten by hand, for tests: the worker's heartbeat sleeps (sleeps of
exactly its `heartbeat_seconds`) wait for the test's `beat()` instead, so a renewal happens
when the test says so, not after some time. Every other sleep is left as it is."""

from __future__ import annotations

import asyncio

import pytest


class Heartbeat:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ticks: asyncio.Queue[None] = asyncio.Queue()

    def beat(self) -> None:
        """Let the heartbeat's current (or next) sleep end."""
        self.ticks.put_nowait(None)


def beaten_by_hand(monkeypatch: pytest.MonkeyPatch, seconds: float) -> Heartbeat:
    heart = Heartbeat(seconds)
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: object = None) -> object:
        if delay == seconds:
            await heart.ticks.get()
            return result
        return await real_sleep(delay, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return heart
