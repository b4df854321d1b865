"""Group commit: small units of work handed in one at a time by concurrent callers, done
together in one transaction.

A caller submits its item and waits for its own result. The first item starts a round with
everything submitted by then (the callers that the work queue started in the same moment);
items submitted while a round runs wait for the next. So a runner with eight payments in
flight reserves them with one transaction and a few statements instead of eight transactions
of a dozen statements each, and no item ever waits for a timer.

When a round fails, every item of it gets the exception: the round's transaction rolled back
whole, so each caller can safely do its item alone instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
Key = TypeVar("Key", bound=Hashable)


def grouped(items: Iterable[Item], key: Callable[[Item], Key]) -> dict[Key, list[Item]]:
    """A round's items by what one statement can serve together (a tenant, a caller), each
    group in the order its items came."""
    groups: dict[Key, list[Item]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self, run: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]], *, max_size: int
    ) -> None:
        self._run = run
        self._max_size = max_size
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._rounds: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._rounds is None or self._rounds.done():
            self._rounds = asyncio.create_task(self._run_rounds())
        return await future

    async def _run_rounds(self) -> None:
        while self._waiting:
            group = self._waiting[: self._max_size]
            del self._waiting[: self._max_size]
            try:
                results = await self._run([item for item, _ in group])
            except Exception as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            except BaseException:
                for _, future in group:
                    future.cancel()
                raise
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)
