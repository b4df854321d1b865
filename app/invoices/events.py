"""Invoice events: the invoice as the API lists it, after the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import today_in
from app.core.events import record_event
from app.core.principal import Principal
from app.invoices.repository import InvoiceRepository
from app.invoices.schemas import InvoiceOut
from app.models import Invoice


async def record_invoice_event(
    session: AsyncSession,
    principal: Principal,
    invoice: Invoice,
    type_: str,
    details: dict[str, Any] | None = None,
    *,
    timezone: str | None = None,
) -> None:
    """`timezone`: the tenant's, when the caller has it in hand (otherwise it is read)."""
    if timezone is None:
        timezone = (await InvoiceRepository(session, principal).tenant()).timezone
    today = today_in(timezone)
    shown = InvoiceOut.of(invoice, today)
    record_event(
        session,
        tenant_id=invoice.tenant_id,
        client_id=invoice.client_id,
        type=type_,
        subject_type="invoice",
        subject_id=invoice.id,
        data=shown.model_dump(mode="json"),
        details=details,
    )
