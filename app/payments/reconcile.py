"""Settling what the gateway left unknown: pending payments and refunds, by asking again
with the same idempotency key (which can only ever find the first charge)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.base import PaymentGateway
from app.payments.processor import PaymentProcessor
from app.payments.refunds import RefundProcessor

logger = logging.getLogger("billing_portal.reconcile")


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
    limit: int = 100,
) -> ReconcileReport:
    payments = await PaymentProcessor(sessionmaker, gateway).reconcile_pending(
        older_than=older_than, limit=limit
    )
    refunds = await RefundProcessor(sessionmaker, gateway).reconcile_pending(
        older_than=older_than, limit=limit
    )
    report = ReconcileReport(
        payments_checked=len(payments),
        payments_settled=sum(p.status != "pending" for p in payments),
        refunds_checked=len(refunds),
        refunds_settled=sum(r.status != "pending" for r in refunds),
    )
    if payments or refunds:
        logger.info("reconciled", extra=asdict(report))
    return report
