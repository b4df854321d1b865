"""One attempt at a scheduled payment, automatic (a runner's claim) or manual ("try now"):
the payments service's three steps with the scheduled payment's bookkeeping in the same two
transactions.

1. reserve the payment under the attempt's keys and note it on the row; or end the attempt
   without one: canceled (the invoice was paid or voided), deferred (another payment holds
   the invoice), held (the invoice is disputed) or failed (the payment method is gone);
2. the gateway call;
3. record the payment's outcome, and the attempt's.
A retried or resumed attempt finds its payment by its request key: never a second charge.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import transaction
from app.core.errors import Conflict, Unprocessable
from app.core.group_commit import GroupCommit, grouped
from app.core.principal import ClientPrincipal, Principal
from app.gateways.base import Charge
from app.invoices.errors import InvoiceNotFound
from app.invoices.repository import InvoiceRepository
from app.models import Payment, ScheduledPayment
from app.payments.charges import PaymentOrder
from app.payments.errors import InvoiceNotPayable, PaymentInProgress
from app.payments.outcome import Outcome, Reserved
from app.payments.repository import PaymentRepository
from app.payments.service import PaymentService
from app.scheduled_payments import attempts
from app.scheduled_payments.attempts import AttemptKeys
from app.scheduled_payments.repository import Claim, ScheduledPaymentRepository
from app.scheduled_payments.service import cancel, live_method, lock_for_change
from app.tickets.repository import TicketRepository

logger = logging.getLogger("billing_portal.scheduler")

# Why an attempt cannot charge anything.
REFUSALS = (InvoiceNotPayable, InvoiceNotFound, PaymentInProgress, Unprocessable)


class NothingOwed(Conflict):
    type_slug = "nothing-owed"
    title = "Nothing is owed"


class InvoiceDisputed(Conflict):
    type_slug = "invoice-disputed"
    title = "Invoice disputed"
    default_detail = (
        "A billing dispute about this invoice is open: its payments wait until it is closed."
    )


@dataclass(frozen=True, slots=True)
class Started:
    """An attempt whose payment is reserved: what the gateway step and the record need."""

    principal: ClientPrincipal
    row_id: uuid.UUID
    reserved: Reserved[Charge]


def _order(row: ScheduledPayment, keys: AttemptKeys) -> PaymentOrder:
    return PaymentOrder(
        payment_method_id=row.payment_method_id,
        invoice_ids=(row.invoice_id,),
        # What was scheduled, or less when the invoice owes less by now.
        amount=row.amount,
        up_to=True,
        origin="scheduled",
        request_key=keys.request_key,
        # A row names the payment of its last attempt in the transaction that reserves it:
        # one that names none has never had a payment, under any key.
        request_key_unused=row.last_payment_id is None,
        scheduled_payment_id=row.id,
        gateway_key=keys.gateway_key,
    )


class Attempts:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        payments: PaymentService,
        settings: Settings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.payments = payments
        self.settings = settings
        # At most a runner's payments in flight meet in one group.
        size = max(1, settings.scheduler_concurrency)
        self._reserving = GroupCommit(self._reserve_group, max_size=size)
        self._recording = GroupCommit(self._record_group, max_size=size)

    async def run_claimed(self, claim: Claim) -> str:
        """A runner's claim: one automatic attempt (or the resumption of a parked one).

        Claims taken at the same moment are reserved together and recorded together
        (`GroupCommit`); a claim that is anything but a first, plain attempt (a resumed or
        manual one, a disputed or unpayable invoice, a method gone) is done alone, and so is
        every claim of a group whose transaction failed."""
        try:
            started = await self._reserving.submit(claim)
        except Exception:
            logger.warning("reserving a group failed; each claim is reserved alone", exc_info=True)
            started = None
        if started is None:
            return await self._run_alone(claim)
        outcome = await self.payments.send(started.reserved)
        try:
            return await self._recording.submit((started, claim, outcome))
        except Exception:
            logger.warning(
                "recording a group failed; each outcome is recorded alone", exc_info=True
            )
            return await self._record(started, claim, outcome)

    async def _run_alone(self, claim: Claim) -> str:
        system = Principal.system(claim.tenant_id)
        try:
            async with transaction(self.sessionmaker) as session:
                repo = ScheduledPaymentRepository(session, system)
                found = (await repo.claimed_for_attempts([claim])).get(claim.id)
                if found is None:
                    return "skipped"  # finished by another runner, or canceled before it began
                row, disputed = found
                principal = ClientPrincipal.of(system, row.client_id)
                if disputed:
                    attempts.hold(session, await self._locked(session, system, claim))
                    return "held"
                manual = row.resume_status is not None
                keys = (
                    attempts.manual_keys(row)
                    if manual
                    else attempts.automatic_keys(row, claim.attempt)
                )
                started = await self._reserve(session, principal, row, keys)
        except REFUSALS as refusal:
            return await self._refused(system, claim, refusal)
        return await self._finish(started, claim)

    async def _reserve_group(self, claims: Sequence[Claim]) -> list[Started | None]:
        """First, plain attempts reserved together, one transaction for the group; None for
        a claim to be done alone."""
        started: dict[Claim, Started] = {}
        async with transaction(self.sessionmaker) as session:
            for tenant_id, group in grouped(claims, key=lambda claim: claim.tenant_id).items():
                system = Principal.system(tenant_id)
                found = await ScheduledPaymentRepository(session, system).claimed_for_attempts(
                    group
                )
                plain = [
                    (claim, row)
                    for claim in group
                    for row, disputed in [found.get(claim.id, (None, True))]
                    if row is not None
                    and not disputed
                    and row.resume_status is None
                    # Never reserved before, under any key: nothing to resume.
                    and row.last_payment_id is None
                ]
                orders = [
                    (
                        ClientPrincipal.of(system, row.client_id),
                        _order(row, attempts.automatic_keys(row, claim.attempt)),
                    )
                    for claim, row in plain
                ]
                reserved = await self.payments.reserve_many(session, system, orders)
                for (claim, row), (payer, _), made in zip(plain, orders, reserved, strict=True):
                    if made is not None:
                        attempts.attempt_started(row, made.record)
                        started[claim] = Started(payer, row.id, made)
        return [started.get(claim) for claim in claims]

    async def _record_group(
        self, items: Sequence[tuple[Started, Claim, Outcome[Charge]]]
    ) -> list[str]:
        """Outcomes of group-reserved attempts recorded together: the payments, then the
        rows, in one transaction."""
        outcomes: dict[Claim, str] = {}
        async with transaction(self.sessionmaker) as session:
            for tenant_id, mine in grouped(items, key=lambda item: item[1].tenant_id).items():
                system = Principal.system(tenant_id)
                claims = [claim for _, claim, _ in mine]
                payments = await self.payments.record_many(
                    session, system, [(s.reserved.record.id, outcome) for s, _, outcome in mine]
                )
                rows = await ScheduledPaymentRepository(session, system).claimed_for_attempts(
                    claims, for_update=True
                )
                for (started, claim, _), payment in zip(mine, payments, strict=True):
                    found = rows.get(claim.id)
                    if found is None:
                        outcomes[claim] = "skipped"
                        continue
                    outcomes[claim] = await self._finished(
                        session, started.principal, found[0], payment
                    )
        return [outcomes[claim] for _, claim, _ in items]

    async def retry_now(
        self, principal: Principal, payment_id: uuid.UUID, method_id: uuid.UUID | None
    ) -> tuple[ScheduledPayment, Payment]:
        """A manual attempt, now, in the caller's request (not counted as an automatic one),
        by the client or by staff for it."""
        async with transaction(self.sessionmaker) as session:
            row = await lock_for_change(session, principal, payment_id)
            acting = (
                principal
                if isinstance(principal, ClientPrincipal)
                else ClientPrincipal.of(principal, row.client_id)
            )
            await self._check_payable(session, acting, row)
            if method_id is not None and method_id != row.payment_method_id:
                await live_method(session, acting, method_id)
            attempts.start_manual(session, row, method_id=method_id)
            principal = ClientPrincipal.of(acting, row.client_id)
            try:
                started = await self._reserve(session, principal, row, attempts.manual_keys(row))
            except (InvoiceNotPayable, InvoiceNotFound) as exc:
                raise NothingOwed("Nothing is owed on this invoice any more.") from exc
        await self._finish(started, None)
        async with transaction(self.sessionmaker) as session:
            row = await ScheduledPaymentRepository(session, acting).get_or_404(payment_id)
            payment = await PaymentRepository(session, acting).get_or_404(
                started.reserved.record.id
            )
        return row, payment

    async def _reserve(
        self,
        session: AsyncSession,
        principal: ClientPrincipal,
        row: ScheduledPayment,
        keys: AttemptKeys,
    ) -> Started:
        reserved = await self.payments.reserve(session, principal, _order(row, keys))
        attempts.attempt_started(row, reserved.record)
        return Started(principal, row.id, reserved)

    async def _finish(self, started: Started, claim: Claim | None) -> str:
        """Steps 2 and 3: the gateway call, then both outcomes in one transaction."""
        reserved = started.reserved
        outcome = await self.payments.send(reserved) if reserved.call is not None else None
        return await self._record(started, claim, outcome)

    async def _record(
        self, started: Started, claim: Claim | None, outcome: Outcome[Charge] | None
    ) -> str:
        async with transaction(self.sessionmaker) as session:
            payment = started.reserved.record
            if outcome is not None:
                payment = await self.payments.record(
                    session, started.principal, payment.id, outcome
                )
            repo = ScheduledPaymentRepository(session, started.principal)
            row = (
                await repo.claimed(claim, for_update=True)
                if claim is not None
                else await repo.get(started.row_id, for_update=True)
            )
            if row is None:
                return "skipped"
            return await self._finished(session, started.principal, row, payment)

    async def _finished(
        self,
        session: AsyncSession,
        principal: ClientPrincipal,
        row: ScheduledPayment,
        payment: Payment,
    ) -> str:
        """The attempt's row after its payment's outcome (the row locked, in the transaction
        that recorded the outcome)."""
        if row.status != "processing":
            return "skipped"
        return attempts.attempt_finished(
            session,
            row,
            payment,
            method_type=await self._method_type(session, principal, payment),
            retry_days=self.settings.scheduler_retry_days,
            pending_wait=timedelta(seconds=self.settings.pending_reconcile_after_seconds),
        )

    async def _method_type(
        self, session: AsyncSession, principal: Principal, payment: Payment
    ) -> str | None:
        """What the retry rules ask of a declined payment's method; a payment that did not
        fail needs no retry, and no read (None)."""
        if payment.status != "failed":
            return None
        methods = await PaymentRepository(session, principal).methods({payment.payment_method_id})
        return methods[payment.payment_method_id].type

    async def _refused(self, system: Principal, claim: Claim, refusal: Exception) -> str:
        """The attempt ends without a payment (the reserving transaction rolled back)."""
        async with transaction(self.sessionmaker) as session:
            row = await ScheduledPaymentRepository(session, system).claimed(claim, for_update=True)
            if row is None:
                return "skipped"
            if isinstance(refusal, PaymentInProgress):
                attempts.defer(session, row)
                return "deferred"
            if isinstance(refusal, InvoiceNotPayable):
                paid = refusal.invoice_status == "paid"
                cancel(session, row, "the invoice was paid" if paid else "the invoice was voided")
                return "canceled"
            if isinstance(refusal, InvoiceNotFound):
                cancel(session, row, "the invoice no longer exists")
                return "canceled"
            assert isinstance(refusal, Unprocessable)
            attempts.fail(session, row, code="payment_method_unavailable", reason=refusal.detail)
            return "failed"

    async def _locked(
        self, session: AsyncSession, principal: Principal, claim: Claim
    ) -> ScheduledPayment:
        row = await ScheduledPaymentRepository(session, principal).claimed(claim, for_update=True)
        assert row is not None, "the claim was checked in this transaction"
        return row

    async def _check_payable(
        self, session: AsyncSession, principal: Principal, row: ScheduledPayment
    ) -> None:
        invoice = await InvoiceRepository(session, principal).get(row.invoice_id)
        if invoice is None or invoice.status != "open" or invoice.balance <= 0:
            raise NothingOwed("Nothing is owed on this invoice any more.")
        if await TicketRepository(session, principal).open_disputes([row.invoice_id]):
            raise InvoiceDisputed()
