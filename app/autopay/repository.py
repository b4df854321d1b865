"""AutoPay's queries: the client's setting and its ordered rules, and the invoices, lines and
payments AutoPay plans from."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from app.autopay.planner import Line, Rule
from app.core.repository import Repository
from app.models import (
    AutopayRule,
    AutopayRuleCategory,
    AutopaySetting,
    Invoice,
    InvoiceLine,
    ScheduledPayment,
)

PREVIEW_LIMIT = 200
# Not finished: their amounts count against what an invoice still owes.
OPEN_STATUSES = ("scheduled", "processing", "on_hold")


@dataclass
class AutopayView:
    """A client's setting (None before the first change) with its rules, in order."""

    setting: AutopaySetting | None
    rules: list[AutopayRule] = field(default_factory=list)
    categories: dict[uuid.UUID, set[uuid.UUID]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.setting and self.setting.enabled)

    def plan_rules(self) -> list[Rule]:
        return [
            Rule(
                id=r.id,
                enabled=r.enabled,
                payment_method_id=r.payment_method_id,
                category_ids=frozenset(self.categories.get(r.id, set())),
                run_on=r.run_on,
                run_days=r.run_days,
                max_invoice_total=r.max_invoice_total,
            )
            for r in self.rules
        ]


class AutopayRepository(Repository[AutopaySetting]):
    model = AutopaySetting

    async def view(self, client_id: uuid.UUID, *, for_update: bool = False) -> AutopayView:
        stmt = self.readable().where(AutopaySetting.client_id == client_id)
        if for_update:
            stmt = stmt.with_for_update()
        setting = (await self.session.execute(stmt)).scalar_one_or_none()
        if setting is None:
            return AutopayView(None)
        rules = list(
            (
                await self.session.execute(
                    select(AutopayRule)
                    .where(AutopayRule.setting_id == setting.id)
                    .order_by(AutopayRule.position)
                )
            ).scalars()
        )
        categories: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        if rules:
            rows = await self.session.execute(
                select(AutopayRuleCategory).where(
                    AutopayRuleCategory.rule_id.in_([r.id for r in rules])
                )
            )
            for row in rows.scalars():
                categories[row.rule_id].add(row.service_category_id)
        return AutopayView(setting, rules, dict(categories))

    async def replace_rules(
        self,
        setting: AutopaySetting,
        current: Sequence[AutopayRule],
        wanted: Sequence[tuple[AutopayRule, set[uuid.UUID]]],
    ) -> None:
        """The setting's rules become `wanted`, in this order. A rule keeps its id where its
        position is kept, so AutoPay's payments stay linked to "the first rule" and so on."""
        for position, (data, categories) in enumerate(wanted):
            if position < len(current):
                rule = current[position]
                rule.enabled = data.enabled
                rule.payment_method_id = data.payment_method_id
                rule.run_on = data.run_on
                rule.run_days = data.run_days
                rule.max_invoice_total = data.max_invoice_total
            else:
                rule = data
                rule.setting_id, rule.tenant_id, rule.position = (
                    setting.id,
                    setting.tenant_id,
                    position,
                )
                self.session.add(rule)
            await self.session.flush()
            await self.session.execute(
                delete(AutopayRuleCategory).where(AutopayRuleCategory.rule_id == rule.id)
            )
            self.session.add_all(
                AutopayRuleCategory(rule_id=rule.id, service_category_id=category)
                for category in categories
            )
        for surplus in current[len(wanted) :]:
            await self.session.delete(surplus)
        await self.session.flush()

    async def lines(self, invoice_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Line]]:
        """Each invoice's lines, as the planner sees them: what each owes, its tax included."""
        found: dict[uuid.UUID, list[Line]] = defaultdict(list)
        if not invoice_ids:
            return found
        rows = await self.session.execute(
            select(
                InvoiceLine.invoice_id,
                InvoiceLine.service_category_id,
                InvoiceLine.amount + InvoiceLine.tax_amount,
            )
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(
                Invoice.tenant_id == self.principal.tenant_id,
                InvoiceLine.invoice_id.in_(invoice_ids),
            )
            .order_by(InvoiceLine.invoice_id, InvoiceLine.position)
        )
        for invoice_id, category_id, amount in rows.all():
            found[invoice_id].append(Line(category_id, amount))
        return found

    async def open_invoices(
        self, client_id: uuid.UUID, *, limit: int | None = None, for_update: bool = False
    ) -> list[Invoice]:
        """The client's open invoices, soonest due first.

        `for_update` locks them in id order, the order a payment locks its invoices in
        (`InvoiceRepository.lock_for_payment`): locked by due date, replanning and a payment
        of several invoices could each hold one the other waits for."""
        stmt = select(Invoice).where(
            Invoice.tenant_id == self.principal.tenant_id,
            Invoice.client_id == client_id,
            Invoice.status == "open",
        )
        if for_update:
            assert limit is None, "all of them are locked, or none"
            locked = await self.session.execute(stmt.order_by(Invoice.id).with_for_update())
            return sorted(locked.scalars(), key=lambda i: (i.due_date, i.id))
        stmt = stmt.order_by(Invoice.due_date, Invoice.id).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def payments_of(
        self, invoice_ids: Sequence[uuid.UUID], *, for_update: bool = False
    ) -> list[ScheduledPayment]:
        """Every scheduled payment of these invoices, oldest first."""
        if not invoice_ids:
            return []
        stmt = (
            select(ScheduledPayment)
            .where(
                ScheduledPayment.tenant_id == self.principal.tenant_id,
                ScheduledPayment.invoice_id.in_(invoice_ids),
            )
            .order_by(ScheduledPayment.created_at, ScheduledPayment.id)
        )
        if for_update:
            stmt = stmt.with_for_update()
        return list((await self.session.execute(stmt)).scalars())

    async def enabled_rules_using(self, method_id: uuid.UUID) -> bool:
        stmt = (
            select(AutopayRule.id)
            .join(AutopaySetting, AutopaySetting.id == AutopayRule.setting_id)
            .where(
                AutopayRule.tenant_id == self.principal.tenant_id,
                AutopayRule.payment_method_id == method_id,
                AutopayRule.enabled.is_(True),
                AutopaySetting.enabled.is_(True),
            )
            .limit(1)
        )
        return (await self.session.execute(stmt)).first() is not None
