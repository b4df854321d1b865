"""Settling what the gateway left unknown: every pending payment and refund old enough, asked
again with its own idempotency key (which can only ever find the first charge), several at once
within a bound. Each is settled as its tenant's system principal."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.db import transaction
from app.core.principal import Principal
from app.gateways.base import PaymentGateway
from app.payments.repository import UnsettledWork
from app.payments.service import PaymentService

logger = logging.getLogger("billing_portal.reconcile")

# As `BILLING_RECONCILE_CONCURRENCY` defaults (the commands pass the setting).
DEFAULT_CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    payments_checked: int
    payments_settled: int
    refunds_checked: int
    refunds_settled: int


async def reconcile(
    sessionmaker: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    *,
    older_than: timedelta,
    limit: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    stop: asyncio.Event | None = None,
) -> ReconcileReport:
    """Settle pending payments and refunds created at least `older_than` ago (at most `limit`
    of each when given); the report counts what was checked and what is settled now.

    Once `stop` is set (a runner told to stop) nothing more is started: the settles in flight
    finish and the rest stay pending for the next run."""
    cutoff = utcnow() - older_than
    async with transaction(sessionmaker) as session:
        work = UnsettledWork(session)
        payments = await work.pending_payments(cutoff, limit)
        refunds = await work.pending_refunds(cutoff, limit)
    service = PaymentService(sessionmaker, gateway)

    async def payment(tenant_id: uuid.UUID, payment_id: uuid.UUID) -> bool:
        settled = await service.settle(Principal.system(tenant_id), payment_id)
        _log("payment", payment_id, settled.status)
        return settled.status != "pending"

    async def refund(tenant_id: uuid.UUID, refund_id: uuid.UUID) -> bool:
        settled = await service.settle_refund(Principal.system(tenant_id), refund_id)
        _log("refund", refund_id, settled.status)
        return settled.status != "pending"

    report = ReconcileReport(
        payments_checked=len(payments),
        payments_settled=await _settle_all(payments, payment, concurrency, stop),
        refunds_checked=len(refunds),
        refunds_settled=await _settle_all(refunds, refund, concurrency, stop),
    )
    if payments or refunds:
        logger.info("reconciled", extra=asdict(report))
    return report


async def _settle_all(
    pending: Sequence[tuple[uuid.UUID, uuid.UUID]],
    settle: Callable[[uuid.UUID, uuid.UUID], Awaitable[bool]],
    concurrency: int,
    stop: asyncio.Event | None,
) -> int:
    """How many of `pending` are settled, `concurrency` at a time. One record's surprise is
    logged and leaves it pending for the next run; it does not stop the others."""
    gate = asyncio.Semaphore(concurrency)

    async def one(tenant_id: uuid.UUID, record_id: uuid.UUID) -> bool:
        async with gate:
            if stop is not None and stop.is_set():
                return False
            try:
                return await settle(tenant_id, record_id)
            except Exception:
                logger.exception("reconciling failed", extra={"record_id": str(record_id)})
                return False

    settled = 0
    # In chunks, so a backlog of a million is not a million tasks at once.
    chunk = concurrency * 50
    for start in range(0, len(pending), chunk):
        if stop is not None and stop.is_set():
            break
        part = pending[start : start + chunk]
        settled += sum(await asyncio.gather(*(one(tenant_id, id_) for tenant_id, id_ in part)))
    return settled


def _log(kind: str, record_id: uuid.UUID, status: str) -> None:
    logger.info(f"{kind} reconciled", extra={f"{kind}_id": str(record_id), "status": status})
