"""What other domains do inside a domain's transaction, registered explicitly.

An invoice issued must be scheduled by AutoPay in the same transaction; a voided one must take
its scheduled payments with it; a payment method AutoPay relies on cannot be deleted, and a new
one takes over AutoPay's retries; a billing dispute holds the invoice's scheduled payments
until it is closed. The invoice, payment-method and ticket domains cannot import AutoPay or
scheduling (those import them), so `create_app`
(and every other entry point) builds one `Hooks` with `app.wiring.build_hooks()` and hands
it to the services that run them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.principal import Principal
from app.models import Invoice, PaymentMethod

InvoiceHook = Callable[[AsyncSession, Principal, Invoice], Awaitable[None]]
InvoiceIdHook = Callable[[AsyncSession, Principal, uuid.UUID], Awaitable[None]]
MethodHook = Callable[[AsyncSession, Principal, PaymentMethod], Awaitable[None]]
InUseCheck = Callable[[AsyncSession, Principal, PaymentMethod], Awaitable[bool]]


@dataclass
class Hooks:
    # Run in the issuing transaction: an invoice is never open without what follows from it.
    invoice_issued: list[InvoiceHook] = field(default_factory=list)
    # Run in the voiding transaction: nothing stays scheduled on a void invoice.
    invoice_voided: list[InvoiceHook] = field(default_factory=list)
    # Any of them saying "in use" refuses deleting the method.
    payment_method_in_use: list[InUseCheck] = field(default_factory=list)
    # Run in the transaction that stores a client's new payment method.
    payment_method_added: list[MethodHook] = field(default_factory=list)
    # Run when a billing dispute about an invoice is opened, and when it is closed.
    dispute_opened: list[InvoiceIdHook] = field(default_factory=list)
    dispute_closed: list[InvoiceIdHook] = field(default_factory=list)

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

    async def run_payment_method_added(
        self, session: AsyncSession, principal: Principal, method: PaymentMethod
    ) -> None:
        for hook in self.payment_method_added:
            await hook(session, principal, method)

    async def run_dispute_opened(
        self, session: AsyncSession, principal: Principal, invoice_id: uuid.UUID
    ) -> None:
        for hook in self.dispute_opened:
            await hook(session, principal, invoice_id)

    async def run_dispute_closed(
        self, session: AsyncSession, principal: Principal, invoice_id: uuid.UUID
    ) -> None:
        for hook in self.dispute_closed:
            await hook(session, principal, invoice_id)
