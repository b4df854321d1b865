"""Builders and readers for the AutoPay, scheduled-payment and runner tests.

What a test does as a caller goes through the HTTP API; what it checks about money and
state is read straight from the database (and the fake gateway's ledger), so an assertion
never trusts the code under test to report on itself. Access tokens are minted afresh on
every use: the tests move a frozen clock by days, and a token made before that has expired.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateways.base import Charge
from app.gateways.fake import FakeGateway
from app.models import (
    Client,
    Event,
    Invoice,
    Payment,
    ScheduledPayment,
    ServiceCategory,
    Tenant,
    User,
)
from tests.factories import CONSENT, Factory, bearer, method_body

API = "/api/v1"
AUTOPAY = f"{API}/autopay"
PREVIEW = f"{API}/autopay/preview"
SCHEDULED = f"{API}/scheduled-payments"
INVOICES = f"{API}/invoices"
METHODS = f"{API}/payment-methods"
NO_SUCH_ID = "00000000-0000-4000-8000-000000000000"

# A Monday, 15:00 UTC (10:00 in New York): every in-process test starts here.
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
TODAY = START.date()
# When the invoices the tests make fall due (2026-03-12).
DUE = TODAY + timedelta(days=10)

Lines = tuple[ServiceCategory, int]


@dataclass
class Scene:
    """A tenant with staff, one client with a contact and a Visa card, and two service
    categories (hosting and help desk)."""

    factory: Factory
    http: AsyncClient
    tenant: Tenant
    client: Client
    staff_user: User
    contact_user: User
    hosting: ServiceCategory
    helpdesk: ServiceCategory
    card: dict[str, Any]

    @property
    def contact(self) -> dict[str, str]:
        return bearer(self.factory.token_for(self.contact_user))

    @property
    def staff(self) -> dict[str, str]:
        return bearer(self.factory.token_for(self.staff_user))

    async def add_card(self, card: str = "tok_mastercard") -> dict[str, Any]:
        """Another payment method, from one of the fake gateway's test tokens."""
        body = method_body(card)
        response = await self.http.post(METHODS, json=body, headers=self.contact)
        assert response.status_code == 201, response.text
        method: dict[str, Any] = response.json()
        return method

    async def draft(self, *lines: Lines, due: date) -> dict[str, Any]:
        body = {
            "client_id": str(self.client.id),
            "currency": "USD",
            "due_date": due.isoformat(),
            "lines": [
                {
                    "description": f"{category.name} {index + 1}",
                    "service_category_id": str(category.id),
                    "quantity": 1,
                    "unit_amount": amount,
                }
                for index, (category, amount) in enumerate(lines)
            ],
        }
        response = await self.http.post(INVOICES, json=body, headers=self.staff)
        assert response.status_code == 201, response.text
        invoice: dict[str, Any] = response.json()
        return invoice

    async def issue(self, invoice_id: str) -> dict[str, Any]:
        response = await self.http.post(f"{INVOICES}/{invoice_id}/issue", headers=self.staff)
        assert response.status_code == 200, response.text
        invoice: dict[str, Any] = response.json()
        return invoice

    async def invoice(self, *lines: Lines, due: date) -> dict[str, Any]:
        """An issued (open) invoice with one line per (category, amount)."""
        return await self.issue((await self.draft(*lines, due=due))["id"])

    async def put_autopay(self, body: dict[str, Any], *, if_match: str | None = None) -> Response:
        """PUT /autopay as the contact; turning it on carries the client's consent unless the
        body says otherwise (give `consent: None` to send none)."""
        if body.get("enabled") and "consent" not in body:
            body = {**body, "consent": CONSENT}
        body = {k: v for k, v in body.items() if v is not None or k != "consent"}
        headers = self.contact
        if if_match is not None:
            headers["If-Match"] = if_match
        return await self.http.put(AUTOPAY, json=body, headers=headers)

    async def enable_autopay(
        self,
        method_id: str | None = None,
        categories: list[ServiceCategory] | None = None,
        days: int = 0,
    ) -> dict[str, Any]:
        response = await self.put_autopay(
            {
                "enabled": True,
                "payment_method_id": method_id or self.card["id"],
                "service_category_ids": [str(c.id) for c in (categories or [self.hosting])],
                "days_before_due": days,
            }
        )
        assert response.status_code == 200, response.text
        setting: dict[str, Any] = response.json()
        return setting

    async def schedule(
        self,
        invoice_id: str,
        amount: int,
        day: date,
        *,
        method_id: str | None = None,
        key: str | None = None,
    ) -> Response:
        headers = self.contact
        if key is not None:
            headers["Idempotency-Key"] = key
        body = {
            "invoice_id": invoice_id,
            "payment_method_id": method_id or self.card["id"],
            "amount": amount,
            "scheduled_for": day.isoformat(),
        }
        return await self.http.post(SCHEDULED, json=body, headers=headers)

    async def scheduled(self, invoice_id: str, amount: int, day: date, **kw: Any) -> dict[str, Any]:
        response = await self.schedule(invoice_id, amount, day, **kw)
        assert response.status_code == 201, response.text
        payment: dict[str, Any] = response.json()
        return payment

    async def pay_now(self, invoice_id: str, amount: int | None = None) -> Response:
        body: dict[str, Any] = {"payment_method_id": self.card["id"]}
        if amount is not None:
            body["amount"] = amount
        return await self.http.post(f"{INVOICES}/{invoice_id}/pay", json=body, headers=self.contact)

    async def scheduled_list(self, **params: str) -> list[dict[str, Any]]:
        response = await self.http.get(SCHEDULED, params=params, headers=self.contact)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def preview(self) -> dict[str, dict[str, Any]]:
        """The preview's items by invoice id."""
        response = await self.http.get(PREVIEW, headers=self.contact)
        assert response.status_code == 200, response.text
        return {item["invoice_id"]: item for item in response.json()["items"]}


async def build_scene(
    factory: Factory,
    http: AsyncClient,
    *,
    name: str = "Test MSP",
    timezone: str = "UTC",
    card: str = "tok_visa",
) -> Scene:
    tenant = await factory.tenant(name, timezone=timezone)
    client = await factory.client(tenant)
    staff = await factory.staff(tenant)
    contact = await factory.contact(tenant, client)
    hosting = await factory.category(tenant, "Hosting")
    helpdesk = await factory.category(tenant, "Help desk")
    response = await http.post(
        METHODS, json={"type": "card", "token": card}, headers=contact.headers
    )
    assert response.status_code == 201, response.text
    return Scene(
        factory=factory,
        http=http,
        tenant=tenant,
        client=client,
        staff_user=staff.user,
        contact_user=contact.user,
        hosting=hosting,
        helpdesk=helpdesk,
        card=response.json(),
    )


async def sibling(scene: Scene, name: str = "Globex", card: str = "tok_visa") -> Scene:
    """Another client of the same tenant, with its own contact and card."""
    factory = scene.factory
    client = await factory.client(scene.tenant, name)
    contact = await factory.contact(scene.tenant, client)
    response = await scene.http.post(
        METHODS, json={"type": "card", "token": card}, headers=contact.headers
    )
    assert response.status_code == 201, response.text
    return Scene(
        factory=factory,
        http=scene.http,
        tenant=scene.tenant,
        client=client,
        staff_user=scene.staff_user,
        contact_user=contact.user,
        hosting=scene.hosting,
        helpdesk=scene.helpdesk,
        card=response.json(),
    )


async def scheduled_today(scene: Scene, amount: int = 10_000, **kw: Any) -> tuple[str, str]:
    """An open invoice of `amount` and a payment of all of it scheduled for today:
    (invoice id, scheduled payment id)."""
    invoice = await scene.invoice((scene.hosting, amount), due=DUE)
    payment = await scene.scheduled(invoice["id"], amount, TODAY, **kw)
    return invoice["id"], payment["id"]


async def many_scheduled_today(scene: Scene, count: int) -> list[str]:
    """`count` invoices of 1,000, 1,001, ... each paid in full by a payment scheduled for
    today: the scheduled payments' ids."""
    ids = []
    for n in range(count):
        invoice = await scene.invoice((scene.hosting, 1_000 + n), due=DUE)
        ids.append((await scene.scheduled(invoice["id"], 1_000 + n, TODAY))["id"])
    return ids


class SlowGateway:
    """The fake gateway behind a gate: every charge waits until the test sets `answer`,
    then goes through to the fake. Every other call goes straight through."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        self.answer = asyncio.Event()
        self.arrived = 0  # charges that reached the gate
        self._arrivals = asyncio.Condition()

    async def charge(self, **kwargs: Any) -> Charge:
        async with self._arrivals:
            self.arrived += 1
            self._arrivals.notify_all()
        await self.answer.wait()
        return await self.gateway.charge(**kwargs)

    async def until_charging(self, count: int = 1) -> None:
        """Until `count` charges have reached the gate (a bound only against a hang)."""
        async with asyncio.timeout(10), self._arrivals:
            await self._arrivals.wait_for(lambda: self.arrived >= count)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.gateway, name)


# -- readers -------------------------------------------------------------------------------


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def scheduled_row(
    sessionmaker: async_sessionmaker[AsyncSession], id_: Any
) -> ScheduledPayment:
    async with sessionmaker() as session:
        row = await session.get(ScheduledPayment, _uuid(id_))
        assert row is not None
        return row


async def scheduled_for_invoice(
    sessionmaker: async_sessionmaker[AsyncSession], invoice_id: Any
) -> list[ScheduledPayment]:
    async with sessionmaker() as session:
        stmt = (
            select(ScheduledPayment)
            .where(ScheduledPayment.invoice_id == _uuid(invoice_id))
            .order_by(ScheduledPayment.created_at, ScheduledPayment.id)
        )
        return list((await session.execute(stmt)).scalars())


async def invoice_row(sessionmaker: async_sessionmaker[AsyncSession], id_: Any) -> Invoice:
    async with sessionmaker() as session:
        row = await session.get(Invoice, _uuid(id_))
        assert row is not None
        return row


async def payments_of(
    sessionmaker: async_sessionmaker[AsyncSession], scheduled_payment_id: Any
) -> list[Payment]:
    """The payments a scheduled payment's attempts made, by attempt."""
    async with sessionmaker() as session:
        stmt = select(Payment).where(Payment.scheduled_payment_id == _uuid(scheduled_payment_id))
        rows = list((await session.execute(stmt)).scalars())
    return sorted(rows, key=lambda p: int(p.gateway_idempotency_key.rsplit("_", 1)[1]))


async def all_payments(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Payment]:
    async with sessionmaker() as session:
        return list((await session.execute(select(Payment))).scalars())


async def events_about(
    sessionmaker: async_sessionmaker[AsyncSession], subject_id: Any
) -> list[Event]:
    async with sessionmaker() as session:
        stmt = select(Event).where(Event.subject_id == _uuid(subject_id))
        return list((await session.execute(stmt)).scalars())


async def event_types(
    sessionmaker: async_sessionmaker[AsyncSession], subject_id: Any
) -> Counter[str]:
    return Counter(e.type for e in await events_about(sessionmaker, subject_id))


async def events_of_type(sessionmaker: async_sessionmaker[AsyncSession], type_: str) -> list[Event]:
    async with sessionmaker() as session:
        stmt = select(Event).where(Event.type == type_)
        return list((await session.execute(stmt)).scalars())
