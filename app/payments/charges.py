"""The steps of a charge, run by `PaymentService` in its transactions: reserve a payment over
one or more invoices, read back what the gateway call needs, record the gateway's outcome.

A payment pays its invoices through allocations, one per invoice, in the order given (oldest
due first when it pays several): each allocation holds its part on its invoice while the
payment is pending, is applied when it succeeds and released when it is declined.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.errors import Unprocessable
from app.core.idempotency import IdempotencyKeyReused
from app.core.money import within_maximum
from app.core.principal import ClientPrincipal, Principal
from app.gateways.base import Charge, PaymentGateway
from app.invoices.errors import InvoiceNotFound
from app.invoices.events import record_invoice_event
from app.invoices.repository import InvoiceRepository
from app.models import Invoice, Payment, PaymentAllocation, PaymentMethod
from app.payment_methods.repository import PaymentMethodRepository
from app.payments.errors import (
    AmountTooLarge,
    InvoiceNotPayable,
    NothingToPay,
    PaymentInProgress,
    PaymentNotFound,
)
from app.payments.events import record_payment_event
from app.payments.outcome import GatewayCall, Outcome, Reserved
from app.payments.presenter import present_payment
from app.payments.repository import PaymentRepository
from app.payments.schemas import PaymentOut


@dataclass(frozen=True, slots=True)
class PaymentOrder:
    """What to charge: a client's payment method, over one or more of its invoices."""

    payment_method_id: uuid.UUID
    # In the order they are to be paid: the first gets its part first.
    invoice_ids: tuple[uuid.UUID, ...]
    # None: what the invoices still owe, less what other payments in flight hold.
    amount: int | None = None
    # True: `amount` is a ceiling, not a demand: charge what is free up to it (the runner's
    # scheduled amount after the invoice was partly paid meanwhile), never more than owed.
    up_to: bool = False
    origin: str = "pay_now"
    # The caller's Idempotency-Key, scoped to the caller: a retry resumes this payment.
    request_key: str | None = None
    # True: the caller knows no payment has `request_key` yet (a scheduled payment that names
    # no payment of its own), so it is not looked for.
    request_key_unused: bool = False
    scheduled_payment_id: uuid.UUID | None = None
    # Sent to the gateway; `payment_<id>` unless the caller derives its own (the runner
    # derives one per attempt of a scheduled payment).
    gateway_key: str | None = None


async def reserve(
    session: AsyncSession, principal: ClientPrincipal, order: PaymentOrder
) -> Reserved[Charge]:
    payments = PaymentRepository(session, principal)
    if order.request_key is not None and not order.request_key_unused:
        existing = await payments.by_request_key(order.request_key)
        if existing is not None:
            # A retry of a request that got this far: resume it. A key reused for another
            # request (its idempotency record expired) must not find it.
            if not await _same_order(payments, existing, order):
                raise IdempotencyKeyReused()
            return await prepare(session, principal, existing.id)
    invoices = await _payable_invoices(session, principal, order.invoice_ids)
    methods = await PaymentMethodRepository(session, principal).live_with_customers(
        [order.payment_method_id]
    )
    found = methods.get(order.payment_method_id)
    if found is None or found[0].client_id != principal.client_id:
        raise Unprocessable("No such payment method.", loc=("body", "payment_method_id"))
    plan = _Plan(
        principal, order, invoices, *found, _split(invoices, order.amount, up_to=order.up_to)
    )
    if not await _hold(session, principal, [plan]):
        raise PaymentInProgress()
    (reserved,) = await _create(session, [plan])
    return reserved


async def reserve_many(
    session: AsyncSession,
    principal: Principal,
    orders: Sequence[tuple[ClientPrincipal, PaymentOrder]],
) -> list[Reserved[Charge] | None]:
    """New payments of one tenant's clients reserved together, with a few statements for all
    of them (the runner's group of due payments). Each order's request key must be unused.
    None for an order that cannot be reserved now (an invoice not open or taken by another
    order of the group, a method gone, nothing free): reserved alone, it says why."""
    invoice_ids = sorted({i for _, order in orders for i in order.invoice_ids})
    locked = {
        i.id: i for i in await InvoiceRepository(session, principal).lock_for_payment(invoice_ids)
    }
    methods = await PaymentMethodRepository(session, principal).live_with_customers(
        {order.payment_method_id for _, order in orders}
    )
    taken: set[uuid.UUID] = set()
    plans = [_plan(payer, order, locked, methods, taken) for payer, order in orders]
    ready = [plan for plan in plans if plan is not None]
    # The rows are locked (or the database is ours alone: SQLite), so every hold is taken;
    # if one is not, the group gives up whole and each order is reserved alone.
    if not await _hold(session, principal, ready):
        raise PaymentInProgress()
    created = iter(await _create(session, ready))
    return [next(created) if plan is not None else None for plan in plans]


@dataclass(frozen=True, slots=True)
class _Plan:
    """A payment about to be reserved: who pays, for what, with which method, and each
    invoice's part."""

    payer: ClientPrincipal
    order: PaymentOrder
    invoices: list[Invoice]
    method: PaymentMethod
    customer: str | None
    parts: list[tuple[Invoice, int]]


def _plan(
    payer: ClientPrincipal,
    order: PaymentOrder,
    locked: Mapping[uuid.UUID, Invoice],
    methods: Mapping[uuid.UUID, tuple[PaymentMethod, str | None]],
    taken: set[uuid.UUID],
) -> _Plan | None:
    assert order.request_key is None or order.request_key_unused, "no payment is resumed here"
    invoices = [locked[i] for i in order.invoice_ids if i in locked]
    payable = len(invoices) == len(order.invoice_ids) and all(
        i.client_id == payer.client_id and i.status == "open" and i.id not in taken
        for i in invoices
    )
    found = methods.get(order.payment_method_id)
    if not payable or found is None or found[0].client_id != payer.client_id:
        return None
    try:
        parts = _split(invoices, order.amount, up_to=order.up_to)
    except (PaymentInProgress, AmountTooLarge):
        return None
    taken.update(i.id for i in invoices)
    return _Plan(payer, order, invoices, *found, parts)


async def _hold(session: AsyncSession, principal: Principal, plans: Sequence[_Plan]) -> bool:
    """Each plan's parts held on its invoices, in one statement; False if any is not."""
    wanted = {invoice.id: part for plan in plans for invoice, part in plan.parts}
    return await InvoiceRepository(session, principal).hold(wanted) == set(wanted)


async def _create(session: AsyncSession, plans: Sequence[_Plan]) -> list[Reserved[Charge]]:
    """The pending payments, their held allocations and their events."""
    made = []
    for plan in plans:
        payment_id = uuid.uuid4()
        payment = Payment(
            id=payment_id,
            tenant_id=plan.payer.tenant_id,
            client_id=plan.payer.client_id,
            payment_method_id=plan.method.id,
            amount=sum(part for _, part in plan.parts),
            currency=plan.invoices[0].currency,
            status="pending",
            origin=plan.order.origin,
            scheduled_payment_id=plan.order.scheduled_payment_id,
            request_key=plan.order.request_key,
            gateway_idempotency_key=plan.order.gateway_key or f"payment_{payment_id}",
            amount_refunded=0,
            gateway_attempts=0,
        )
        made.append(PaymentRepository(session, plan.payer).add(payment))
    await session.flush()  # the payments first: their allocations refer to them
    reserved = []
    for plan, payment in zip(plans, made, strict=True):
        allocations = [
            PaymentAllocation(
                tenant_id=plan.payer.tenant_id,
                payment_id=payment.id,
                invoice_id=invoice.id,
                position=position,
                amount=part,
                status="held",
                amount_refunded=0,
            )
            for position, (invoice, part) in enumerate(plan.parts)
        ]
        PaymentRepository(session, plan.payer).add_allocations(allocations)
        numbers = {invoice.id: invoice.number for invoice in plan.invoices}
        shown = present_payment(payment, plan.method, allocations, numbers)
        await record_payment_event(session, plan.payer, payment, "payment.pending", shown=shown)
        call = _charge_call(payment, plan.method.gateway_reference, plan.customer)
        reserved.append(Reserved(payment, call))
    await session.flush()
    return reserved


async def prepare(
    session: AsyncSession, principal: Principal, payment_id: uuid.UUID
) -> Reserved[Charge]:
    """A payment and, while it is pending, the call that settles it (with the same key)."""
    found = (await prepare_many(session, principal, [payment_id])).get(payment_id)
    if found is None:
        raise PaymentNotFound()
    return found


async def prepare_many(
    session: AsyncSession, principal: Principal, payment_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Reserved[Charge]]:
    """`prepare` for several payments at once (a payment not the caller's is missing)."""
    found = await PaymentRepository(session, principal).with_method_and_customer(payment_ids)
    prepared: dict[uuid.UUID, Reserved[Charge]] = {}
    for payment_id, (payment, method, customer) in found.items():
        call = _charge_call(payment, method.gateway_reference, customer)
        prepared[payment_id] = Reserved(payment, call if payment.status == "pending" else None)
    return prepared


@dataclass(frozen=True, slots=True)
class Recorded:
    payment: Payment
    # The payment as the API shows it after this outcome, with nothing refunded yet (None: it
    # was settled before, or is still pending): what pay-now answers without reading again.
    shown: PaymentOut | None


async def record(
    session: AsyncSession, principal: Principal, payment_id: uuid.UUID, outcome: Outcome[Charge]
) -> Recorded:
    (recorded,) = await record_many(session, principal, [(payment_id, outcome)])
    return recorded


async def record_many(
    session: AsyncSession,
    principal: Principal,
    outcomes: Sequence[tuple[uuid.UUID, Outcome[Charge]]],
) -> list[Recorded]:
    """The gateway's answers for pending payments, recorded together: the payments locked in
    id order, the invoices' money moved with one statement for all that were paid and one for
    all that were declined. A payment settled meanwhile by another settler (from the same
    charge) is left as it is."""
    loaded = await PaymentRepository(session, principal).locked_with_allocations(
        [payment_id for payment_id, _ in outcomes]
    )
    if len(loaded) != len({payment_id for payment_id, _ in outcomes}):
        raise PaymentNotFound()
    settling = [(loaded[payment_id], outcome) for payment_id, outcome in outcomes]
    settling = [(found, outcome) for found, outcome in settling if found[0].status == "pending"]
    paid: defaultdict[uuid.UUID, int] = defaultdict(int)
    released: defaultdict[uuid.UUID, int] = defaultdict(int)
    for (_, _, allocations), outcome in settling:
        moved = paid if _succeeded(outcome) else released if outcome.declined else None
        for allocation in allocations:
            if moved is not None and allocation.status == "held":
                moved[allocation.invoice_id] += allocation.amount
    invoices = InvoiceRepository(session, principal)
    touched = sorted(paid.keys() | released.keys())
    if len(touched) > 1:
        # Several invoices: their rows are taken in id order first, as reserving takes
        # them, so two settlers never wait on each other in a circle.
        await invoices.lock_for_payment(touched)
    after = await invoices.apply_held(paid)
    await invoices.release_held(released)
    announced: set[uuid.UUID] = set()
    shown: dict[uuid.UUID, PaymentOut | None] = {}
    for (payment, method, allocations), outcome in settling:
        shown[payment.id] = await _settle(
            session, principal, payment, method, allocations, outcome, after, announced
        )
    await session.flush()
    return [Recorded(loaded[payment_id][0], shown.get(payment_id)) for payment_id, _ in outcomes]


def _succeeded(outcome: Outcome[Charge]) -> bool:
    return outcome.result is not None and outcome.result.status == "succeeded"


async def _settle(
    session: AsyncSession,
    principal: Principal,
    payment: Payment,
    method: PaymentMethod,
    allocations: list[PaymentAllocation],
    outcome: Outcome[Charge],
    after: Mapping[uuid.UUID, tuple[Invoice, str]],
    announced: set[uuid.UUID],
) -> PaymentOut | None:
    """One pending payment's outcome, once its invoices' money has moved: its status, its
    allocations', and the events (`invoice.paid` once per invoice, by the payment that paid
    the rest of it)."""
    held = [a for a in allocations if a.status == "held"]
    charge = outcome.result
    payment.gateway_attempts += 1
    if charge is not None and _succeeded(outcome):
        for allocation in held:
            allocation.status = "applied"
        payment.status = "succeeded"
        payment.gateway_charge_reference = charge.reference
        payment.settled_at = utcnow()
        numbers = {a.invoice_id: after[a.invoice_id][0].number for a in held}
        shown = present_payment(payment, method, allocations, numbers)
        await record_payment_event(session, principal, payment, "payment.succeeded", shown=shown)
        for allocation in sorted(held, key=lambda a: a.invoice_id):
            invoice, timezone = after[allocation.invoice_id]
            if invoice.status == "paid" and invoice.id not in announced:
                announced.add(invoice.id)
                await record_invoice_event(
                    session, principal, invoice, "invoice.paid", timezone=timezone
                )
        return shown
    if outcome.declined is not None:
        declined = outcome.declined
        for allocation in held:
            allocation.status = "released"
        payment.status = "failed"
        payment.failure_code = declined.code
        payment.failure_message = declined.message[:500]
        payment.gateway_charge_reference = declined.charge_reference
        payment.settled_at = utcnow()
        shown = present_payment(payment, method, allocations, {})
        await record_payment_event(
            session, principal, payment, "payment.failed", shown=shown, hard_decline=declined.hard
        )
        return shown
    if charge is not None:
        # The gateway took it but has not finished (a charge still `pending` there).
        payment.gateway_charge_reference = charge.reference
    return None


def _charge_call(
    payment: Payment, method_reference: str, customer: str | None
) -> GatewayCall[Charge]:
    # Copied out of the row: the call runs after its transaction is gone.
    amount, currency, key = payment.amount, payment.currency, payment.gateway_idempotency_key
    metadata = {"payment_id": str(payment.id)}

    async def call(gateway: PaymentGateway) -> Charge:
        return await gateway.charge(
            amount=amount,
            currency=currency,
            method_reference=method_reference,
            customer_reference=customer or "",
            idempotency_key=key,
            description=f"Payment {payment.id}",
            metadata=metadata,
        )

    return call


async def _payable_invoices(
    session: AsyncSession, principal: ClientPrincipal, invoice_ids: Sequence[uuid.UUID]
) -> list[Invoice]:
    """The invoices, in the order asked for, each of them the client's own and open."""
    repo = InvoiceRepository(session, principal)
    locked = {i.id: i for i in await repo.lock_for_payment(invoice_ids)}
    invoices = []
    for invoice_id in invoice_ids:
        invoice = locked.get(invoice_id)
        if invoice is None:
            raise InvoiceNotFound()
        if invoice.status != "open":
            raise InvoiceNotPayable(invoice.status)
        invoices.append(invoice)
    return invoices


def _split(
    invoices: Sequence[Invoice], amount: int | None, *, up_to: bool
) -> list[tuple[Invoice, int]]:
    """Each invoice's part of `amount`, in order: each takes what it still owes (less what
    payments in flight hold) until the amount is used up."""
    owed = sum(i.balance for i in invoices)
    available = [i.balance - i.amount_reserved for i in invoices]
    if amount is not None and amount > owed and not up_to:
        raise AmountTooLarge(
            f"The amount is more than the invoice's balance ({owed}).", loc=("body", "amount")
        )
    free = sum(available)
    if amount is None:
        wanted = free
    elif up_to:
        wanted = run_time_amount(amount, owed, sum(i.amount_reserved for i in invoices))
    else:
        wanted = amount
    if wanted <= 0 or wanted > sum(available):
        raise PaymentInProgress()
    # Several invoices, each within the maximum, can owe more together than one charge may be.
    within_maximum(wanted, what="One payment", loc=("body", "amount"))
    parts = []
    for invoice, free in zip(invoices, available, strict=True):
        part = min(free, wanted)
        if part > 0:
            parts.append((invoice, part))
            wanted -= part
    return parts


async def _same_order(payments: PaymentRepository, payment: Payment, order: PaymentOrder) -> bool:
    # An invoice asked for may have got no part (nothing left on it): a subset, not equality.
    paid = {a.invoice_id for a in await payments.allocations([payment.id])}
    return (
        paid <= set(order.invoice_ids)
        and payment.payment_method_id == order.payment_method_id
        and (
            order.amount in (None, payment.amount)
            or (order.up_to and payment.amount <= order.amount)
        )
    )


def run_time_amount(ceiling: int, balance: int, reserved: int) -> int:
    """What a payment with a ceiling may charge: never more than the invoices still owe, less
    what other payments in flight already hold."""
    return max(0, min(ceiling, balance - reserved))


async def oldest_first(
    session: AsyncSession, acting: ClientPrincipal, invoice_ids: Sequence[uuid.UUID] | None
) -> tuple[uuid.UUID, ...]:
    """The invoices a payment of several pays, in the order it pays them (oldest due date
    first): the ones named (each the client's own and open), or every open one."""
    wanted = list(dict.fromkeys(invoice_ids)) if invoice_ids is not None else None
    found = await InvoiceRepository(session, acting).of_client(acting.client_id, wanted)
    if wanted is not None:
        known = {i.id: i for i in found}
        for index, invoice_id in enumerate(wanted):
            invoice = known.get(invoice_id)
            if invoice is None:
                raise Unprocessable("No such invoice.", loc=("body", "invoice_ids", index))
            if invoice.status != "open":
                raise Unprocessable(
                    f"The invoice is {invoice.status}; only open invoices can be paid.",
                    loc=("body", "invoice_ids", index),
                )
    if not found:
        raise NothingToPay()
    if len({i.currency for i in found}) > 1:
        raise Unprocessable(
            "One payment pays invoices of one currency: name the invoices of one currency.",
            loc=("body", "invoice_ids"),
        )
    return tuple(i.id for i in found)
