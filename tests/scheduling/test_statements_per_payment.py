"""The money paths cost a fixed, small number of statements per payment: pay-now (with and
without an Idempotency-Key), a declined pay-now, and one due payment taken by the runner.

Counted on the engine as in `tests/perf/test_statements_per_request.py`: SQL statements apart
from transaction control, and the connections checked out of the pool (one per transaction or
read; the gateway is called with none held). Each path runs once first,
uncounted, so the statements are compiled and the caches warm; the counted run must then
stay within its budget. The budgets are what the paths cost now: a change that reads a row
twice, or loads a presenter's data again, fails here before it shows in a benchmark.
"""

from __future__ import annotations

from typing import Any

from app.scheduler.runner import PaymentRunner
from tests.perf.test_statements_per_request import Count, counting
from tests.scheduling.helpers import DUE, Scene, many_scheduled_today

# (statements, connections) per payment.
# Pay-now: the caller; the reserve (invoice, method with the customer, hold, the payment, its
# allocation, its event); the record (payment with method and allocations, the invoice after,
# the payment, the allocation, the events). The answer is what the record presented: no read.
PAY_NOW = (12, 3)
# With a key: the idempotency record made (one INSERT ... ON CONFLICT DO NOTHING) and completed
# (one UPDATE) besides, and the key's payment looked for.
PAY_NOW_WITH_KEY = (15, 5)
# Declined: the hold released, no invoice event.
PAY_NOW_DECLINED = (12, 3)
# The runner: the attempt's reserve (the claimed row with its invoice's disputes, invoice,
# method, hold, the payment, its allocation, its event, the row) and its record (payment with
# method and allocations, the invoice after, the payment, the allocation, the events, the row
# locked and moved on, its event).
RUNNER_ATTEMPT = (16, 2)


def within(count: Count, budget: tuple[int, int], what: str) -> None:
    statements = "\n".join(s[:160] for s in count.statements)
    assert count.n <= budget[0], f"{what}: {count.n} statements\n{statements}"
    assert count.checkouts <= budget[1], f"{what}: {count.checkouts} connections"


async def test_pay_now_costs_a_few_statements(app: Any, scene: Scene) -> None:
    engine = app.state.engine
    invoices = [await scene.invoice((scene.hosting, 5_000 + n), due=DUE) for n in range(3)]
    assert (await scene.pay_now(invoices[0]["id"])).status_code == 201
    with counting(engine) as count:
        response = await scene.pay_now(invoices[1]["id"])
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "succeeded"
    within(count, PAY_NOW, "pay-now")

    url = f"/api/v1/invoices/{invoices[2]['id']}/pay"
    body = {"payment_method_id": scene.card["id"]}
    with counting(engine) as count:
        keyed = await scene.http.post(
            url, json=body, headers={**scene.contact, "Idempotency-Key": "statements-1"}
        )
    assert keyed.status_code == 201, keyed.text
    within(count, PAY_NOW_WITH_KEY, "pay-now with an Idempotency-Key")


async def test_a_declined_pay_now_costs_a_few_statements(app: Any, scene: Scene) -> None:
    engine = app.state.engine
    poor = await scene.add_card("tok_chargeDeclined")
    invoices = [await scene.invoice((scene.hosting, 5_000 + n), due=DUE) for n in range(2)]
    url = "/api/v1/invoices/{}/pay"
    body = {"payment_method_id": poor["id"]}
    warm = await scene.http.post(url.format(invoices[0]["id"]), json=body, headers=scene.contact)
    assert warm.status_code == 402, warm.text
    with counting(engine) as count:
        response = await scene.http.post(
            url.format(invoices[1]["id"]), json=body, headers=scene.contact
        )
    assert response.status_code == 402, response.text
    within(count, PAY_NOW_DECLINED, "a declined pay-now")


async def test_a_due_payment_costs_the_runner_a_few_statements(
    app: Any, scene: Scene, runner: PaymentRunner
) -> None:
    engine = app.state.engine
    await many_scheduled_today(scene, 2)
    claims = await runner.claim(10)
    assert len(claims) == 2
    assert await runner.process(claims[0]) == "succeeded"
    with counting(engine) as count:
        outcome = await runner.process(claims[1])
    assert outcome == "succeeded"
    within(count, RUNNER_ATTEMPT, "the runner's attempt")
