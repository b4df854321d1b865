"""AutoPay end to end: enable it, issue an invoice, let the runner pay on the day."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

from httpx import AsyncClient

from app.core.clock import FrozenClock
from app.core.config import Settings
from app.scheduler.runner import PaymentRunner
from tests.factories import Factory

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


async def test_autopay_schedules_and_runner_pays(
    client: AsyncClient, factory: Factory, app: Any, settings: Settings
) -> None:
    with FrozenClock(START) as clock:
        world = await factory.world()
        hosting = await factory.category(world.tenant, "Hosting")
        helpdesk = await factory.category(world.tenant, "Help desk")
        contact, staff = world.contact.headers, world.staff.headers
        card = await client.post(
            "/api/v1/payment-methods", json={"type": "card", "token": "tok_visa"}, headers=contact
        )
        current = await client.get("/api/v1/autopay", headers=contact)
        assert current.status_code == 200, current.text
        assert current.json()["enabled"] is False
        put = await client.put(
            "/api/v1/autopay",
            json={
                "enabled": True,
                "payment_method_id": card.json()["id"],
                "service_category_ids": [str(hosting.id)],
                "days_before_due": 3,
                "consent": {"accepted": True, "text_version": 1},
            },
            headers={**contact, "If-Match": current.headers["ETag"]},
        )
        assert put.status_code == 200, put.text
        stale = await client.put(
            "/api/v1/autopay",
            json={"enabled": False},
            headers={**contact, "If-Match": current.headers["ETag"]},
        )
        assert stale.status_code == 412

        due = date(2026, 3, 12)
        draft = await client.post(
            "/api/v1/invoices",
            json={
                "client_id": str(world.client.id),
                "currency": "USD",
                "due_date": due.isoformat(),
                "lines": [
                    {
                        "description": "Hosting",
                        "service_category_id": str(hosting.id),
                        "quantity": 1,
                        "unit_amount": 7000,
                    },
                    {
                        "description": "Help desk",
                        "service_category_id": str(helpdesk.id),
                        "quantity": 1,
                        "unit_amount": 3000,
                    },
                ],
            },
            headers=staff,
        )
        invoice_id = draft.json()["id"]
        await client.post(f"/api/v1/invoices/{invoice_id}/issue", headers=staff)
        scheduled = (await client.get("/api/v1/scheduled-payments", headers=contact)).json()
        (item,) = scheduled["items"]
        assert (item["amount"], item["scheduled_for"], item["origin"]) == (
            7000,
            "2026-03-09",
            "autopay",
        )
        preview = (await client.get("/api/v1/autopay/preview", headers=contact)).json()
        assert preview["items"][0]["will_pay"] is True

        runner = PaymentRunner(app.state.sessionmaker, app.state.gateway, settings)
        assert (await runner.run_once()).claimed == 0
        clock.advance(days=7)
        report = await runner.run_once()
        assert (report.claimed, report.succeeded) == (1, 1)
        # A week later the morning's access token has long expired: sign in afresh.
        contact = {"Authorization": f"Bearer {factory.token_for(world.contact.user)}"}
        done = (
            await client.get(f"/api/v1/scheduled-payments/{item['id']}", headers=contact)
        ).json()
        assert done["status"] == "succeeded"
        invoice = (await client.get(f"/api/v1/invoices/{invoice_id}", headers=contact)).json()
        assert (invoice["amount_paid"], invoice["balance"], invoice["status"]) == (
            7000,
            3000,
            "open",
        )
        assert len(app.state.gateway.charges) == 1
        in_use = await client.delete(
            f"/api/v1/payment-methods/{card.json()['id']}", headers=contact
        )
        assert in_use.status_code == 409
        assert clock.now - START == timedelta(days=7)
