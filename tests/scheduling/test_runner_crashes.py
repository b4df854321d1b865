"""The payment runner when the gateway's answer is lost or a runner dies half-way: the
attempt is resumed with the same gateway key once its lease lapses (simulated time), and
each payment is charged exactly once; while a runner lives, its heartbeat keeps its rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.config import Settings
from app.gateways.base import Charge
from app.gateways.fake import FakeGateway
from app.payments.outcome import Outcome, Reserved
from app.scheduler.runner import PaymentRunner
from tests.core.heartbeat import beaten_by_hand
from tests.scheduling.helpers import (
    DUE,
    Scene,
    SlowGateway,
    all_payments,
    event_types,
    events_of_type,
    invoice_row,
    payments_of,
    scheduled_row,
    scheduled_today,
)
from tests.scheduling.processes import poll


@pytest.mark.parametrize("mode", ["timeout", "error", "lost_response"])
async def test_an_unknown_outcome_is_resumed_with_the_same_key_and_charged_once(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
    mode: Any,
) -> None:
    invoice_id, sp_id = await scheduled_today(scene, 5_000)
    gateway.fail_next(mode=mode)

    report = await runner.run_once()

    assert (report.claimed, report.pending) == (1, 1)
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts) == ("processing", 1)
    (payment,) = await payments_of(sessionmaker, sp_id)
    assert payment.status == "pending"
    assert (await invoice_row(sessionmaker, invoice_id)).amount_reserved == 5_000
    assert len(gateway.charges) == (1 if mode == "lost_response" else 0)
    # Nobody touches it while its lease holds.
    clock.advance(seconds=59)
    assert (await runner.run_once()).claimed == 0

    clock.advance(seconds=1)
    report = await runner.run_once()

    assert report.succeeded == 1
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts, row.lease_expires_at) == ("succeeded", 1, None)
    (payment,) = await payments_of(sessionmaker, sp_id)
    assert payment.status == "succeeded"
    assert payment.gateway_idempotency_key == f"scheduled_{sp_id}_1"
    (charge,) = gateway.charges
    assert charge.idempotency_key == payment.gateway_idempotency_key
    summary = gateway.summary()
    assert (summary["charges"], summary["distinct_keys"], summary["calls"]) == (1, 1, 2)
    invoice = await invoice_row(sessionmaker, invoice_id)
    assert (invoice.amount_paid, invoice.amount_reserved, invoice.status) == (5_000, 0, "paid")
    assert len(await events_of_type(sessionmaker, "payment.succeeded")) == 1
    assert (await event_types(sessionmaker, sp_id))["scheduled_payment.succeeded"] == 1


class RunnerDied(BaseException):
    """Stands for the process being killed: nothing after it runs, and nothing catches it
    (a BaseException, as SystemExit is)."""


class DyingGateway:
    """Passes calls to the fake gateway, but the runner "dies" at `charge`: before the call
    reaches the gateway, or after the gateway has charged (the answer never read)."""

    def __init__(self, gateway: FakeGateway, *, after_charge: bool) -> None:
        self.gateway = gateway
        self.after_charge = after_charge

    async def charge(self, **kwargs: Any) -> Charge:
        if self.after_charge:
            await self.gateway.charge(**kwargs)
        raise RunnerDied

    def __getattr__(self, name: str) -> Any:
        return getattr(self.gateway, name)


async def test_a_runner_that_died_after_claiming_is_taken_over_after_its_lease(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _, sp_id = await scheduled_today(scene, 5_000)
    (claim,) = await runner.claim(10)  # ... and then the process was killed
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts) == ("processing", 1)
    assert row.lease_expires_at == clock.now + timedelta(seconds=300)

    clock.advance(seconds=299)
    assert (await runner.run_once()).claimed == 0
    clock.advance(seconds=1)
    report = await runner.run_once()

    assert (report.claimed, report.succeeded) == (1, 1)
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts) == ("succeeded", claim.attempt)
    assert [c.idempotency_key for c in gateway.charges] == [f"scheduled_{sp_id}_1"]


async def test_a_live_runners_heartbeat_keeps_its_rows_while_a_slow_charge_goes_on(
    scene: Scene,
    runner: PaymentRunner,
    runner_with: Callable[..., PaymentRunner],
    runner_settings: Settings,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One payment at the gateway and the next claimed behind it. The lease is shorter than
    reconciliation's wait, as a deployment's would be: nobody else asks the gateway about the
    payment in flight meanwhile."""
    ids = [(await scheduled_today(scene, amount))[1] for amount in (1_000, 2_000)]
    lease = timedelta(seconds=30)
    assert lease.total_seconds() < runner_settings.pending_reconcile_after_seconds
    # The runner renews its leases every third of a lease; here, when the test beats.
    heart = beaten_by_hand(monkeypatch, lease.total_seconds() / 3)
    slow = SlowGateway(gateway)
    live = runner_with(via=slow, scheduler_lease_seconds=30, scheduler_concurrency=1)
    running = asyncio.create_task(live.run_once())
    await slow.until_charging()

    async def leases_end(at: datetime) -> bool:
        rows = [await scheduled_row(sessionmaker, id_) for id_ in ids]
        return all(r.lease_expires_at == at for r in rows)

    assert await leases_end(clock.now + lease)
    clock.advance(seconds=lease.total_seconds() - 1)
    heart.beat()
    renewed_until = clock.now + lease
    await poll(lambda: leases_end(renewed_until), within=10, what="both leases renewed")
    clock.advance(seconds=2)  # the lease they were claimed with has run out: held anyway

    assert (await runner.run_once()).claimed == 0
    slow.answer.set()
    report = await asyncio.wait_for(running, 10)

    assert (report.claimed, report.succeeded) == (2, 2)
    for id_ in ids:
        row = await scheduled_row(sessionmaker, id_)
        assert (row.status, row.attempts, row.lease_expires_at) == ("succeeded", 1, None)
    summary = gateway.summary()
    assert (summary["charges"], summary["calls"]) == (2, 2)


async def test_one_attempts_unexpected_error_does_not_stop_the_run(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, broken_id = await scheduled_today(scene, 1_000)
    _, fine_id = await scheduled_today(scene, 2_000)
    real_send = runner.payments.send
    blown: list[uuid.UUID] = []

    async def send_once_broken(reserved: Reserved[Any]) -> Outcome[Any]:
        payment_id = reserved.record.id
        row = await scheduled_row(sessionmaker, broken_id)
        if row.last_payment_id == payment_id and not blown:
            blown.append(payment_id)
            raise RuntimeError("a bug in one attempt")
        return await real_send(reserved)

    monkeypatch.setattr(runner.payments, "send", send_once_broken)
    report = await runner.run_once()

    assert (report.claimed, report.succeeded, report.errored) == (2, 1, 1)
    assert (await scheduled_row(sessionmaker, fine_id)).status == "succeeded"
    assert (await scheduled_row(sessionmaker, broken_id)).status == "processing"
    clock.advance(seconds=300)
    assert (await runner.run_once()).succeeded == 1
    assert (await scheduled_row(sessionmaker, broken_id)).status == "succeeded"
    assert sorted(c.amount for c in gateway.charges) == [1_000, 2_000]


@pytest.mark.parametrize("after_charge", [False, True], ids=["before-charge", "after-charge"])
async def test_a_runner_that_died_at_the_gateway_is_finished_without_a_second_charge(
    scene: Scene,
    runner: PaymentRunner,
    runner_with: Callable[..., PaymentRunner],
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
    after_charge: bool,
) -> None:
    invoice_id, sp_id = await scheduled_today(scene, 5_000)
    doomed = runner_with(via=DyingGateway(gateway, after_charge=after_charge))
    with pytest.raises(RunnerDied):
        await doomed.run_once()
    (payment,) = await payments_of(sessionmaker, sp_id)
    assert payment.status == "pending"
    assert (await scheduled_row(sessionmaker, sp_id)).status == "processing"
    assert len(gateway.charges) == (1 if after_charge else 0)

    clock.advance(seconds=300)  # the dead runner's lease lapses
    report = await runner.run_once()

    assert report.succeeded == 1
    row = await scheduled_row(sessionmaker, sp_id)
    assert (row.status, row.attempts) == ("succeeded", 1)
    (payment,) = await payments_of(sessionmaker, sp_id)
    assert payment.status == "succeeded"
    assert [c.idempotency_key for c in gateway.charges] == [f"scheduled_{sp_id}_1"]
    assert (await invoice_row(sessionmaker, invoice_id)).amount_paid == 5_000
    assert len(await events_of_type(sessionmaker, "payment.succeeded")) == 1


async def test_a_gateway_outage_does_not_keep_a_run_busy(
    scene: Scene,
    runner_with: Callable[..., PaymentRunner],
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """With reconciliation set to run at once, an attempt left pending must still wait for
    the next run rather than be taken again, and again, within this one."""
    runner = runner_with(pending_reconcile_after_seconds=0)
    _, sp_id = await scheduled_today(scene, 5_000)
    gateway.fail_next(1_000, mode="timeout", operation="any")

    report = await asyncio.wait_for(runner.run_once(), timeout=20)

    assert report.claimed == 1
    assert report.pending == 1
    assert gateway.summary()["calls"] == 1
    gateway.reset()  # the gateway is back
    clock.advance(seconds=1)
    report = await runner.run_once()
    assert (report.reconciled, report.succeeded) == (1, 1)
    assert (await scheduled_row(sessionmaker, sp_id)).status == "succeeded"
    assert len(gateway.charges) == 1


async def test_a_pending_pay_now_is_reconciled_by_the_runners_loop(
    scene: Scene,
    runner: PaymentRunner,
    gateway: FakeGateway,
    clock: FrozenClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    invoice = await scene.invoice((scene.hosting, 3_000), due=DUE)
    gateway.fail_next(mode="lost_response")
    await scene.pay_now(invoice["id"])
    (payment,) = await all_payments(sessionmaker)
    assert payment.status == "pending"

    clock.advance(seconds=59)
    assert (await runner.run_once()).reconciled == 0
    clock.advance(seconds=1)
    report = await runner.run_once()

    assert report.reconciled == 1
    (payment,) = await all_payments(sessionmaker)
    assert payment.status == "succeeded"
    assert len(gateway.charges) == 1
    assert (await invoice_row(sessionmaker, invoice["id"])).status == "paid"
    assert (await event_types(sessionmaker, payment.id))["payment.succeeded"] == 1
