"""What other domains do inside a domain's transaction, registered explicitly.

An invoice issued must be scheduled by AutoPay in the same transaction; a voided one must take
its scheduled payments with it; a payment method AutoPay relies on cannot be deleted. The
invoice and payment-method domains cannot import AutoPay (it imports them), so `create_app`
(and every other entry point) builds one `Hooks` with `app.wiring.build_hooks()` and hands
it to the services that run them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.principal import Principal
from app.models import Invoice, PaymentMethod

InvoiceHook = Callable[[AsyncSession, Principal, Invoice], Awaitable[None]]
InUseCheck = Callable[[AsyncSession, Principal, PaymentMethod], Awaitable[bool]]


@dataclass
class Hooks:
    # Run in the issuing transaction: an invoice is never open without what follows from it.
    invoice_issued: list[InvoiceHook] = field(default_factory=list)
    # Run in the voiding transaction: nothing stays scheduled on a void invoice.
    invoice_voided: list[InvoiceHook] = field(default_factory=list)
    # Any of them saying "in use" refuses deleting the method.
    payment_method_in_use: list[InUseCheck] = field(default_factory=list)

    async def run_invoice_issued(
        self, session: AsyncSession, principal: Principal, invoice: Invoice
    ) -> None:
        for hook in self.invoice_issued:
            await hook(session, principal, invoice)

    async def run_invoice_voided(
        self, session: AsyncSession, principal: Principal, invoice: Invoice
    ) -> None:
        for hook in self.invoice_voided:
            await hook(session, principal, invoice)

    async def payment_method_is_in_use(
        self, session: AsyncSession, principal: Principal, method: PaymentMethod
    ) -> bool:
        for check in self.payment_method_in_use:
            if await check(session, principal, method):
                return True
        return False
