"""The money path: every charge and every refund goes through here, with one skeleton.

1. **Reserve**, in one short transaction: hold the amount (on each invoice a payment pays, with
   a guarded update; against the payment a refund returns) and record the payment or refund as
   `pending`, with a gateway key derived from its own id. Commit.
2. **Call the gateway** outside any transaction. The same key can only ever find the first
   charge (or refund), so calling again is always safe.
3. **Record the outcome** in a second short transaction: apply the holds on success, release
   them on a decline, leave the record `pending` when the answer is unknown (a timeout, a 5xx);
   `reconcile` settles those later by asking again with the same key.

A crash anywhere leaves either nothing or a `pending` record that reconciliation finishes:
never a lost payment, never a second charge. Pay-now and the due-payment runner reserve here,
reconciliation settles here; nothing else charges or refunds. The runner runs the three steps
itself (`reserve`, `send`, `record`) so that its own bookkeeping shares their transactions.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import transaction
from app.core.db_unavailable import is_database_unavailable
from app.core.group_commit import GroupCommit, grouped
from app.core.metrics import PAYMENTS, time_gateway_call
from app.core.principal import ClientPrincipal, Principal
from app.gateways.base import Charge, GatewayDeclined, GatewayError, PaymentGateway
from app.models import Payment, Refund
from app.payments import charges, refunds
from app.payments.charges import PaymentOrder, Recorded
from app.payments.errors import PaymentPending, RefundPending
from app.payments.outcome import Outcome, Reserved
from app.payments.repository import PaymentRepository

logger = logging.getLogger("billing_portal.payments")

# The most settles read or recorded in one transaction.
GROUP_SIZE = 50

R = TypeVar("R")
T = TypeVar("T")

Recorder = Callable[[AsyncSession, Principal, uuid.UUID, Outcome[R]], Awaitable[T]]


class PaymentService:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], gateway: PaymentGateway
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gateway = gateway
        self._preparing = GroupCommit(self._prepare_group, max_size=GROUP_SIZE)
        self._recording = GroupCommit(self._record_group, max_size=GROUP_SIZE)

    # -- charges -------------------------------------------------------------------------

    async def pay(self, principal: ClientPrincipal, order: PaymentOrder) -> Recorded:
        """Reserve, charge and record; the payment in its final (or still pending) state."""
        async with transaction(self.sessionmaker) as session:
            reserved = await charges.reserve(session, principal, order)
        if reserved.call is None:
            return Recorded(reserved.record, None)  # a retry that found it settled
        return await self._complete(principal, reserved, charges.record)

    async def reserve(
        self, session: AsyncSession, principal: ClientPrincipal, order: PaymentOrder
    ) -> Reserved[Charge]:
        """Step 1 in the caller's transaction (which must commit before `send`)."""
        return await charges.reserve(session, principal, order)

    async def reserve_many(
        self,
        session: AsyncSession,
        principal: Principal,
        orders: Sequence[tuple[ClientPrincipal, PaymentOrder]],
    ) -> list[Reserved[Charge] | None]:
        """Step 1 for several new payments of one tenant at once (None: reserve that one
        alone), in the caller's transaction."""
        return await charges.reserve_many(session, principal, orders)

    async def send(self, reserved: Reserved[R]) -> Outcome[R]:
        """Step 2: the gateway call, outside any transaction."""
        assert reserved.call is not None, "only a pending payment or refund is sent"
        try:
            with time_gateway_call(self.gateway.name, reserved.operation):
                return Outcome(result=await reserved.call(self.gateway))
        except GatewayDeclined as declined:
            return Outcome(declined=declined)
        except GatewayError as exc:
            logger.warning(
                "gateway outcome unknown; left pending",
                extra={"record_id": str(reserved.record.id), "error_code": exc.code},
            )
            return Outcome()

    async def record(
        self,
        session: AsyncSession,
        principal: Principal,
        payment_id: uuid.UUID,
        outcome: Outcome[Charge],
    ) -> Payment:
        """Step 3 in the caller's transaction."""
        payment = (await charges.record(session, principal, payment_id, outcome)).payment
        _count(payment)
        return payment

    async def record_many(
        self,
        session: AsyncSession,
        principal: Principal,
        outcomes: Sequence[tuple[uuid.UUID, Outcome[Charge]]],
    ) -> list[Payment]:
        """Step 3 for several payments of one tenant at once, in the caller's transaction."""
        payments = [r.payment for r in await charges.record_many(session, principal, outcomes)]
        for payment in payments:
            _count(payment)
        return payments

    async def settled(self, principal: Principal, request_key: str) -> Payment | None:
        """The payment a request key made, once it is settled (None while it is pending or
        when there is none): what a retried request answers without charging again."""
        async with transaction(self.sessionmaker) as session:
            payment = await PaymentRepository(session, principal).by_request_key(request_key)
        return payment if payment is not None and payment.status != "pending" else None

    async def settle(self, principal: Principal, payment_id: uuid.UUID) -> Payment:
        """A payment left pending, settled by asking the gateway again with its own key.

        Settles running at once (reconciliation's) are read together and recorded together
        (`GroupCommit`); a group that fails leaves each to be done alone."""
        try:
            reserved = await self._preparing.submit((principal, payment_id))
        except Exception:
            logger.warning("preparing a group failed; each is prepared alone", exc_info=True)
            reserved = None
        if reserved is None:  # not found in the group: alone, it says why
            async with transaction(self.sessionmaker) as session:
                reserved = await charges.prepare(session, principal, payment_id)
        if reserved.call is None:
            settled: Payment = reserved.record
            return settled
        outcome = await self.send(reserved)
        try:
            return await self._recording.submit((principal, payment_id, outcome))
        except Exception:
            logger.warning("recording a group failed; each is recorded alone", exc_info=True)
        return (await self._record_outcome(principal, reserved, charges.record, outcome)).payment

    async def _prepare_group(
        self, items: Sequence[tuple[Principal, uuid.UUID]]
    ) -> list[Reserved[Charge] | None]:
        found: dict[tuple[Principal, uuid.UUID], Reserved[Charge]] = {}
        async with transaction(self.sessionmaker) as session:
            for principal, group in grouped(items, key=lambda item: item[0]).items():
                prepared = await charges.prepare_many(session, principal, [i for _, i in group])
                found |= {(principal, i): reserved for i, reserved in prepared.items()}
        return [found.get(item) for item in items]

    async def _record_group(
        self, items: Sequence[tuple[Principal, uuid.UUID, Outcome[Charge]]]
    ) -> list[Payment]:
        done: dict[tuple[Principal, uuid.UUID], Payment] = {}
        async with transaction(self.sessionmaker) as session:
            for principal, group in grouped(items, key=lambda item: item[0]).items():
                pairs = [(i, outcome) for _, i, outcome in group]
                payments = await self.record_many(session, principal, pairs)
                done |= {(principal, i): p for (i, _), p in zip(pairs, payments, strict=True)}
        return [done[principal, i] for principal, i, _ in items]

    # -- refunds -------------------------------------------------------------------------

    async def refund(
        self,
        principal: Principal,
        payment_id: uuid.UUID,
        amount: int | None,
        *,
        request_key: str | None,
    ) -> Refund:
        async with transaction(self.sessionmaker) as session:
            reserved = await refunds.reserve(
                session, principal, payment_id, amount, request_key=request_key
            )
        return await self._complete(principal, reserved, refunds.record)

    async def settle_refund(self, principal: Principal, refund_id: uuid.UUID) -> Refund:
        async with transaction(self.sessionmaker) as session:
            reserved = await refunds.prepare(session, principal, refund_id)
        return await self._complete(principal, reserved, refunds.record)

    # -- the skeleton ----------------------------------------------------------------------

    async def _complete(
        self, principal: Principal, reserved: Reserved[R], record: Recorder[R, T]
    ) -> T:
        """Steps 2 and 3 for a reserved record (nothing to do when it is settled already)."""
        if reserved.call is None:
            settled: T = reserved.record
            return settled
        return await self._record_outcome(principal, reserved, record, await self.send(reserved))

    async def _record_outcome(
        self,
        principal: Principal,
        reserved: Reserved[R],
        record: Recorder[R, T],
        outcome: Outcome[R],
    ) -> T:
        try:
            async with transaction(self.sessionmaker) as session:
                done = await record(session, principal, reserved.record.id, outcome)
        except Exception as exc:
            # The gateway answered but the database did not take the outcome: the record
            # stays pending (never lost, never charged twice) and reconciliation settles it.
            if not is_database_unavailable(exc):
                raise
            logger.error(
                "database unavailable while recording a gateway outcome; left pending",
                extra={"record_id": str(reserved.record.id)},
            )
            if isinstance(reserved.record, Payment):
                raise PaymentPending(reserved.record.id) from None
            raise RefundPending(reserved.record.id) from None
        if isinstance(done, Recorded):
            _count(done.payment)
        return done


def _count(payment: Payment) -> None:
    PAYMENTS.labels(payment.status, payment.origin).inc()
