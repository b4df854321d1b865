"""`billing-portal reconcile` as a real process over a few hundred payments the gateway left
pending (made through the payments service while the gateway failed: some never reached it,
some were charged and the answer lost), then a healthy gateway: `--limit N` settles N, the
least-tried first; one call without it settles every one left, more than any page of 100,
and prints the true totals. Every charge is counted in the ledger file the process shares."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.principal import ClientPrincipal, Principal
from app.gateways.base import GatewaySettings
from app.gateways.fake import FakeGateway, ledger_summary
from app.models import Invoice, Payment, Refund
from app.payments.charges import PaymentOrder
from app.payments.service import PaymentService
from tests.factories import Factory
from tests.scheduling.processes import Spawner, all_payments, cli_env, make_owners, open_invoices

PENDING = 240  # more than twice the 100 a run used to stop at
LIMIT = 40
STUBBORN = 10  # the oldest pending payments, asked about many times already
REFUNDS = 5

T = TypeVar("T")


async def at_most_eight_at_once(calls: list[Awaitable[T]]) -> list[T]:
    gate = asyncio.Semaphore(8)

    async def one(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


def totals(stdout: str) -> tuple[int, int, int, int]:
    """(payments settled, pending; refunds settled, pending) as the command printed them."""
    match = re.fullmatch(
        r"payments: (\d+) settled of (\d+) pending; refunds: (\d+) settled of (\d+) pending\n",
        stdout,
    )
    assert match, stdout
    settled, pending, refunds_settled, refunds_pending = (int(g) for g in match.groups())
    return settled, pending, refunds_settled, refunds_pending


async def test_reconcile_settles_every_pending_payment_and_refund_and_limit_settles_n(
    factory: Factory,
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    spawn: Spawner,
) -> None:
    owners = await make_owners(factory, client, clients=4)
    invoices = open_invoices(owners, PENDING, extra=lambda n: 0)
    async with sessionmaker() as session, session.begin():
        session.add_all(invoices)
    ledger = tmp_path / "ledger.db"
    failing = FakeGateway(GatewaySettings(fake_ledger_path=str(ledger)))
    failing.fail_next(PENDING // 2, mode="timeout")  # never reached the gateway
    failing.fail_next(PENDING - PENDING // 2, mode="lost_response")  # charged, answer lost
    service = PaymentService(sessionmaker, failing)
    methods = dict(owners.cards)
    system = Principal.system(owners.tenant_id)
    recorded = await at_most_eight_at_once(
        [
            service.pay(
                ClientPrincipal.of(system, invoice.client_id),
                PaymentOrder(methods[invoice.client_id], (invoice.id,)),
            )
            for invoice in invoices
        ]
    )
    made = [r.payment for r in recorded]
    assert {p.status for p in made} == {"pending"}
    assert ledger_summary(str(ledger))["charges"] == PENDING - PENDING // 2
    oldest = sorted(made, key=lambda p: (p.created_at, p.id))
    stubborn = {p.id for p in oldest[:STUBBORN]}
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Payment).where(Payment.id.in_(stubborn)).values(gateway_attempts=50)
        )
    env = cli_env(database_url, tmp_path)

    limited = await spawn.start(env, "reconcile", "--older-than", "0", "--limit", str(LIMIT))
    code, stdout, stderr = await limited.finish()

    assert code == 0, stderr[-3000:]
    assert totals(stdout) == (LIMIT, LIMIT, 0, 0)
    settled = {p.id for p in await all_payments(sessionmaker) if p.status == "succeeded"}
    assert len(settled) == LIMIT
    # Fewest tries first: the oldest payments were passed over for having been tried the most.
    assert not settled & stubborn

    # Refunds the gateway left pending too, on payments settled just now.
    refunding = PaymentService(sessionmaker, failing)
    failing.fail_next(REFUNDS, mode="timeout", operation="refund")
    refunded = sorted(settled)[:REFUNDS]
    refunds = await at_most_eight_at_once(
        [refunding.refund(system, id_, 100, request_key=None) for id_ in refunded]
    )
    assert {r.status for r in refunds} == {"pending"}

    everything = await spawn.start(env, "reconcile", "--older-than", "0")
    code, stdout, stderr = await everything.finish()

    assert code == 0, stderr[-3000:]
    assert totals(stdout) == (PENDING - LIMIT, PENDING - LIMIT, REFUNDS, REFUNDS)
    payments = await all_payments(sessionmaker)
    assert len(payments) == PENDING
    assert {p.status for p in payments} == {"succeeded"}
    async with sessionmaker() as session:
        refund_rows = list((await session.execute(select(Refund))).scalars())
        after = {i.id: i for i in (await session.execute(select(Invoice))).scalars()}
    assert [r.status for r in refund_rows] == ["succeeded"] * REFUNDS
    # Every invoice is paid in full, less the refunds (which open it again).
    for invoice, payment in zip(invoices, made, strict=True):
        paid = invoice.total - (100 if payment.id in refunded else 0)
        expected = ("paid" if paid == invoice.total else "open", paid, 0)
        row = after[invoice.id]
        assert (row.status, row.amount_paid, row.amount_reserved) == expected
    # Each payment charged once: the lost answers were found again by their keys, and each
    # payment was asked about exactly twice (the failed call, then reconciliation's).
    summary = ledger_summary(str(ledger))
    assert (summary["charges"], summary["distinct_keys"], summary["calls"]) == (
        PENDING,
        PENDING,
        2 * PENDING,
    )
    assert summary["refunds"] == REFUNDS
    assert sorted(c.reference for c in failing.charges) == sorted(
        p.gateway_charge_reference for p in payments if p.gateway_charge_reference
    )
