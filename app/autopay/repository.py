"""AutoPay's queries: the client's setting and the service categories it covers, and the
invoice lines and payments it works from."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import delete, select

from app.core.repository import Repository
from app.models import AutopayCategory, AutopaySetting, Invoice, InvoiceLine, ScheduledPayment

PREVIEW_LIMIT = 200


class AutopayRepository(Repository[AutopaySetting]):
    model = AutopaySetting

    async def setting(
        self, client_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[AutopaySetting | None, set[uuid.UUID]]:
        """The client's setting (None before the first change) and its covered categories."""
        stmt = self.readable().where(AutopaySetting.client_id == client_id)
        if for_update:
            stmt = stmt.with_for_update()
        setting = (await self.session.execute(stmt)).scalar_one_or_none()
        if setting is None:
            return None, set()
        rows = await self.session.execute(
            select(AutopayCategory.service_category_id).where(
                AutopayCategory.setting_id == setting.id
            )
        )
        return setting, set(rows.scalars())

    async def replace_categories(self, setting: AutopaySetting, categories: set[uuid.UUID]) -> None:
        await self.session.execute(
            delete(AutopayCategory).where(AutopayCategory.setting_id == setting.id)
        )
        self.session.add_all(
            AutopayCategory(setting_id=setting.id, service_category_id=category)
            for category in categories
        )

    async def covered_amounts(
        self, invoice_ids: Sequence[uuid.UUID], categories: set[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        """For each invoice, the sum of its lines in the covered service categories, with
        their tax."""
        if not invoice_ids or not categories:
            return {}
        rows = await self.session.execute(
            select(InvoiceLine.invoice_id, InvoiceLine.amount + InvoiceLine.tax_amount)
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(
                Invoice.tenant_id == self.principal.tenant_id,
                InvoiceLine.invoice_id.in_(invoice_ids),
                InvoiceLine.service_category_id.in_(categories),
            )
        )
        totals: dict[uuid.UUID, int] = defaultdict(int)
        for invoice_id, amount in rows.all():
            totals[invoice_id] += amount
        return dict(totals)

    async def invoices(self, invoice_ids: set[uuid.UUID]) -> dict[uuid.UUID, Invoice]:
        if not invoice_ids:
            return {}
        stmt = select(Invoice).where(
            Invoice.tenant_id == self.principal.tenant_id, Invoice.id.in_(invoice_ids)
        )
        return {i.id: i for i in (await self.session.execute(stmt)).scalars()}

    async def open_invoices(self, client_id: uuid.UUID) -> list[Invoice]:
        """The client's open invoices, soonest due first (as many as a preview shows)."""
        stmt = (
            select(Invoice)
            .where(
                Invoice.tenant_id == self.principal.tenant_id,
                Invoice.client_id == client_id,
                Invoice.status == "open",
            )
            .order_by(Invoice.due_date, Invoice.id)
            .limit(PREVIEW_LIMIT)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def latest_autopay_payments(
        self, invoice_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ScheduledPayment]:
        """Each invoice's most recent AutoPay payment."""
        latest: dict[uuid.UUID, ScheduledPayment] = {}
        if not invoice_ids:
            return latest
        stmt = (
            select(ScheduledPayment)
            .where(
                ScheduledPayment.tenant_id == self.principal.tenant_id,
                ScheduledPayment.invoice_id.in_(invoice_ids),
                ScheduledPayment.origin == "autopay",
            )
            .order_by(ScheduledPayment.created_at)
        )
        for payment in (await self.session.execute(stmt)).scalars():
            latest[payment.invoice_id] = payment
        return latest
