"""The runner's metrics come from what it really did: payments by outcome and origin, gateway
call times, and after a run the queue's depth and the oldest due payment's lag."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY

from app.core.clock import FrozenClock
from app.gateways.fake import FakeGateway
from app.scheduler.runner import PaymentRunner
from tests.scheduling.helpers import Scene, scheduled_today


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_run_counts_its_payments_gateway_calls_and_leaves_the_queue_measured(
    scene: Scene, runner: PaymentRunner, gateway: FakeGateway, clock: FrozenClock
) -> None:
    await scheduled_today(scene, 1_000)
    await scheduled_today(scene, 2_000)
    declining = await scene.add_card("tok_chargeDeclined")
    await scheduled_today(scene, 3_000, method_id=declining["id"])
    charge = {"gateway": gateway.name, "operation": "charge"}
    before = {
        "ok": sample("billing_payments_total", outcome="succeeded", origin="scheduled"),
        "failed": sample("billing_payments_total", outcome="failed", origin="scheduled"),
        "calls": sample("billing_gateway_call_duration_seconds_count", **charge),
    }

    report = await runner.run_once()

    assert (report.succeeded, report.retrying) == (2, 1)
    ok = sample("billing_payments_total", outcome="succeeded", origin="scheduled")
    failed = sample("billing_payments_total", outcome="failed", origin="scheduled")
    calls = sample("billing_gateway_call_duration_seconds_count", **charge)
    assert (ok - before["ok"], failed - before["failed"]) == (2, 1)
    assert calls - before["calls"] == 3
    # Nothing is due any more: the declined one waits for its retry tomorrow.
    assert sample("billing_runner_queue_depth", queue="scheduled_payments") == 0
    assert sample("billing_runner_queue_lag_seconds", queue="scheduled_payments") == 0

    # A day and a half later the retry is due and has waited half a day when measured.
    clock.advance(days=1, hours=12)
    await runner.measure()
    assert sample("billing_runner_queue_depth", queue="scheduled_payments") == 1
    lag = sample("billing_runner_queue_lag_seconds", queue="scheduled_payments")
    assert lag == timedelta(hours=12).total_seconds()
