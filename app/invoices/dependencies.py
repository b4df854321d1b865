"""Invoices named in the path, loaded for the caller or answered with 404."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import PrincipalDep
from app.core.deps import SessionDep
from app.invoices.repository import InvoiceRepository
from app.models import Invoice


async def invoice_from_path(
    invoice_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Invoice:
    return await InvoiceRepository(session, principal).get_or_404(invoice_id)


async def invoice_for_update(
    invoice_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Invoice:
    """Row-locked for the request's transaction: the endpoint is about to change it."""
    return await InvoiceRepository(session, principal).get_or_404(invoice_id, for_update=True)


InvoiceDep = Annotated[Invoice, Depends(invoice_from_path)]
LockedInvoiceDep = Annotated[Invoice, Depends(invoice_for_update)]
