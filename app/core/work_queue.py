"""Background work as rows claimed under a lease: one mechanism for every kind of it.

A kind of work (due payments; webhook deliveries and emails to come) brings its own claim,
lease renewal, hand-back and "do one item" steps; `Worker` runs them:

- keeps `concurrency` items in flight, claiming the next batch before the current one runs
  dry (claims are short transactions of their own: `FOR UPDATE SKIP LOCKED` on PostgreSQL,
  serialized writers on SQLite, so any number of workers can run at once);
- renews the lease of everything it holds every `heartbeat`, so a live worker keeps its rows
  and a dead one's come back to the others once its lease lapses;
- on `stop`, claims nothing more, lets the items in flight finish, and hands back the ones it
  has not started, so nothing waits for a lease to lapse.

Every item is done at least once; each kind makes doing it twice harmless (idempotency keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

logger = logging.getLogger("billing_portal.work")

C = TypeVar("C", bound=Hashable)


class WorkKind(Protocol[C]):
    name: str

    async def claim(self, limit: int) -> list[C]:
        """Take up to `limit` items under a lease (an empty list: nothing is due)."""
        ...

    async def renew(self, claims: list[C]) -> None:
        """Extend the lease of items still held."""
        ...

    async def hand_back(self, claims: list[C]) -> None:
        """Give back items that were claimed but not started."""
        ...

    async def process(self, claim: C) -> str:
        """Do one item; the name of its outcome, for the report."""
        ...


@dataclass
class DrainReport:
    claimed: int = 0
    handed_back: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class Worker(Generic[C]):
    def __init__(
        self,
        kind: WorkKind[C],
        *,
        batch_size: int,
        concurrency: int,
        heartbeat_seconds: float,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.kind = kind
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.heartbeat_seconds = heartbeat_seconds
        self.stop = stop or asyncio.Event()

    async def drain(self) -> DrainReport:
        """Work until nothing more is due, or until `stop` is set."""
        report = DrainReport()
        backlog: deque[C] = deque()
        running: dict[asyncio.Task[str], C] = {}
        beating = asyncio.create_task(self._heartbeat(backlog, running))
        stopping = asyncio.create_task(self.stop.wait())
        more = True
        try:
            while True:
                self._refill(backlog, running, report)
                # Free slots are filled first, so the next batch is claimed while every slot
                # is busy; and claimed again until `concurrency` items wait, however small a
                # batch is, so a finished item's slot never waits for a claim.
                while more and not self.stop.is_set() and len(backlog) < self.concurrency:
                    batch = await self.kind.claim(self.batch_size)
                    report.claimed += len(batch)
                    backlog.extend(batch)
                    more = bool(batch)
                    self._refill(backlog, running, report)
                if not running:
                    break  # stopping, or nothing claimed is left and nothing more is due
                waiters: set[asyncio.Future[Any]] = {*running}
                if not self.stop.is_set():
                    waiters.add(stopping)
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if backlog:
                unstarted = list(backlog)
                await self.kind.hand_back(unstarted)
                report.handed_back = len(unstarted)
            beating.cancel()
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        return report

    def _refill(
        self, backlog: deque[C], running: dict[asyncio.Task[str], C], report: DrainReport
    ) -> None:
        """Count the items that finished, and start claimed ones in their slots."""
        for task in [t for t in running if t.done()]:
            del running[task]
            report.outcomes[task.result()] += 1
        while backlog and len(running) < self.concurrency and not self.stop.is_set():
            claim = backlog.popleft()
            running[asyncio.create_task(self._one(claim))] = claim

    async def _one(self, claim: C) -> str:
        try:
            return await self.kind.process(claim)
        except Exception:
            # One item's surprise must not end the run for the others. It stays claimed until
            # its lease lapses; then a worker takes it again, and the kind's idempotency keys
            # keep the second try from doing anything twice.
            logger.exception(
                "work item failed unexpectedly; left to its lease",
                extra={"kind": self.kind.name, "claim": repr(claim)},
            )
            return "errored"

    async def _heartbeat(self, backlog: deque[C], running: dict[asyncio.Task[str], C]) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            held = [*backlog, *running.values()]
            if not held:
                continue
            try:
                await self.kind.renew(held)
            except Exception:
                logger.exception("renewing leases failed", extra={"kind": self.kind.name})
