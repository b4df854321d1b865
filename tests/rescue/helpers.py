"""Arrange-steps and readers for rescuing failed payments: AutoPay on a method paying an
invoice due today, a manual try-now, and the attempts' payments in the order they were made."""

from __future__ import annotations

from typing import Any

from httpx import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Payment
from tests.autopay.helpers import autopay_rows, rule, set_rules
from tests.scheduling.helpers import SCHEDULED, TODAY, Scene, _uuid


async def autopay_due_today(
    scene: Scene,
    sessionmaker: async_sessionmaker[AsyncSession],
    method: dict[str, Any],
    amount: int = 6_000,
) -> tuple[str, str]:
    """AutoPay on `method` for hosting and an invoice of `amount` due today: (invoice id,
    AutoPay's scheduled payment id)."""
    await set_rules(scene, rule(method, scene.hosting))
    invoice = await scene.invoice((scene.hosting, amount), due=TODAY)
    (row,) = await autopay_rows(sessionmaker, invoice["id"])
    return invoice["id"], str(row.id)


async def try_now(
    scene: Scene,
    scheduled_payment_id: str,
    method_id: str | None = None,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """POST /scheduled-payments/{id}/retry, as the contact unless other headers are given."""
    sent = dict(headers if headers is not None else scene.contact)
    if key is not None:
        sent["Idempotency-Key"] = key
    body = {} if method_id is None else {"payment_method_id": method_id}
    return await scene.http.post(
        f"{SCHEDULED}/{scheduled_payment_id}/retry", json=body, headers=sent
    )


async def attempt_payments(
    sessionmaker: async_sessionmaker[AsyncSession], scheduled_payment_id: Any
) -> list[Payment]:
    """The payments a scheduled payment's attempts made, automatic and manual, in order."""
    async with sessionmaker() as session:
        stmt = (
            select(Payment)
            .where(Payment.scheduled_payment_id == _uuid(scheduled_payment_id))
            .order_by(Payment.created_at, Payment.id)
        )
        return list((await session.execute(stmt)).scalars())


def keys(payments: list[Payment], scheduled_payment_id: str) -> list[str]:
    """The attempts' gateway keys, short: `1`, `2` automatic, `m1` manual ..."""
    prefix = f"scheduled_{scheduled_payment_id}_"
    return [p.gateway_idempotency_key.removeprefix(prefix) for p in payments]
