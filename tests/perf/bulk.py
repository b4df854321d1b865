"""Rows in bulk for the performance tests and benchmarks: one client's long history (mostly
settled, a few rows that the filters look for), written with multi-row INSERTs.

Only what the list endpoints read is filled in; every row satisfies the tables' checks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.models import (
    Invoice,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    ScheduledPayment,
    Ticket,
)

CHUNK = 1000


@dataclass(frozen=True)
class History:
    """How many rows of each kind one client gets; `live` of each are the rare ones the
    filters find (open invoices, failed payments, scheduled payments, open tickets)."""

    rows: int
    live: int = 5


async def _insert(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        await session.execute(insert(model), rows[start : start + CHUNK])


async def seed_history(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    client_id: uuid.UUID,
    history: History,
    *,
    start: datetime | None = None,
    first_ticket_number: int = 1,
) -> None:
    """`history.rows` invoices, payments, scheduled payments and tickets for the client, one
    minute apart and all in the past; the newest `history.live` of each are the live ones
    (open, failed, scheduled, not closed), the rest settled. Open invoices are due in the
    future, so `?overdue=true` matches nothing: the sparsest filter there is."""
    now = start or utcnow()
    tag = uuid.uuid4().hex[:8]
    method_id = uuid.uuid4()
    await _insert(
        session,
        PaymentMethod,
        [
            {
                "id": method_id,
                "tenant_id": tenant_id,
                "client_id": client_id,
                "type": "card",
                "brand": "visa",
                "last4": "4242",
                "exp_month": 12,
                "exp_year": 2040,
                "fingerprint": f"bulk-{tag}",
                "gateway_reference": f"pm_bulk_{tag}",
                "created_at": now - timedelta(days=3650),
            }
        ],
    )
    invoices, payments, allocations, scheduled, tickets = [], [], [], [], []
    for i in range(history.rows):
        live = i >= history.rows - history.live
        created = now - timedelta(minutes=history.rows - i)
        invoice_id = uuid.uuid4()
        invoices.append(
            {
                "id": invoice_id,
                "tenant_id": tenant_id,
                "client_id": client_id,
                "number": f"B{tag}-{i}",
                "status": "open" if live else "paid",
                "currency": "USD",
                "issued_on": created.date(),
                "due_date": (now + timedelta(days=30)).date() if live else date(2020, 1, 1),
                "total": 1000,
                "tax_total": 0,
                "amount_paid": 0 if live else 1000,
                "amount_reserved": 0,
                "created_at": created,
                "updated_at": created,
            }
        )
        payment_id = uuid.uuid4()
        payments.append(
            {
                "id": payment_id,
                "tenant_id": tenant_id,
                "client_id": client_id,
                "payment_method_id": method_id,
                "amount": 1000,
                "currency": "USD",
                "status": "failed" if live else "succeeded",
                "origin": "scheduled",
                "gateway_idempotency_key": f"bulk_{tag}_{i}",
                "amount_refunded": 0,
                "gateway_attempts": 1,
                "created_at": created,
                "updated_at": created,
            }
        )
        allocations.append(
            {
                "tenant_id": tenant_id,
                "payment_id": payment_id,
                "invoice_id": invoice_id,
                "position": 0,
                "amount": 1000,
                # A failed payment's hold was released; a settled one's applied.
                "status": "released" if live else "applied",
                "amount_refunded": 0,
            }
        )
        scheduled.append(
            {
                "tenant_id": tenant_id,
                "client_id": client_id,
                "invoice_id": invoice_id,
                "payment_method_id": method_id,
                "amount": 1000,
                "currency": "USD",
                "scheduled_for": (now + timedelta(days=30)).date() if live else created.date(),
                "status": "scheduled" if live else "succeeded",
                "origin": "manual",
                "attempts": 0 if live else 1,
                "manual_attempts": 0,
                "next_attempt_at": now + timedelta(days=30) if live else created,
                "last_payment_id": None if live else payment_id,
                "version": 1,
                "created_at": created,
                "updated_at": created,
            }
        )
        tickets.append(
            {
                "tenant_id": tenant_id,
                "client_id": client_id,
                "number": first_ticket_number + i,
                "subject": "Printer",
                "description": "It jams.",
                "priority": "normal",
                "kind": "support",
                "status": "open" if live else "closed",
                "resolution_notes": None if live else "Fixed.",
                "closed_at": None if live else created,
                "created_at": created,
                "updated_at": created,
            }
        )
    await _insert(session, Invoice, invoices)
    await _insert(session, Payment, payments)
    await _insert(session, PaymentAllocation, allocations)
    await _insert(session, ScheduledPayment, scheduled)
    await _insert(session, Ticket, tickets)
