"""Arrange-steps and readers for the AutoPay-rules tests (on top of `tests.scheduling.helpers`).

A test writes AutoPay through the API (`PUT /autopay` with `rules`) and reads what it made
straight from the database, so no assertion trusts the code under test to report on itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from httpx import Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.models import ScheduledPayment, ServiceCategory
from tests.factories import CONSENT
from tests.scheduling.helpers import AUTOPAY, Lines, Scene, scheduled_for_invoice

WAITING = ("scheduled", "on_hold", "processing")


def rule(
    method: dict[str, Any],
    *categories: ServiceCategory,
    on: str = "days_before_due",
    days: int = 0,
    cap: int | None = None,
    enabled: bool = True,
) -> dict[str, Any]:
    """One AutoPay rule as `PUT /autopay` takes it."""
    body: dict[str, Any] = {
        "enabled": enabled,
        "payment_method_id": method["id"],
        "service_category_ids": [str(c.id) for c in categories],
        "run": {"on": on, "days": days},
    }
    if cap is not None:
        body["max_invoice_total"] = cap
    return body


async def put_rules(
    scene: Scene, *rules: dict[str, Any], enabled: bool = True, as_staff: bool = False
) -> Response:
    """Replace the client's AutoPay with these rules, by the contact (or staff for the client),
    with the client's consent to turning it on."""
    body: dict[str, Any] = {"enabled": enabled, "rules": list(rules)}
    if enabled:
        body["consent"] = CONSENT
    if as_staff:
        return await scene.http.put(
            AUTOPAY, params={"client_id": str(scene.client.id)}, json=body, headers=scene.staff
        )
    return await scene.http.put(AUTOPAY, json=body, headers=scene.contact)


async def set_rules(scene: Scene, *rules: dict[str, Any], **kw: Any) -> dict[str, Any]:
    response = await put_rules(scene, *rules, **kw)
    assert response.status_code == 200, response.text
    setting: dict[str, Any] = response.json()
    return setting


async def get_autopay(scene: Scene) -> dict[str, Any]:
    response = await scene.http.get(AUTOPAY, headers=scene.contact)
    assert response.status_code == 200, response.text
    setting: dict[str, Any] = response.json()
    return setting


def at(day: date, hour: int = 15) -> datetime:
    """An instant on `day` (UTC, the scene's zone)."""
    return datetime.combine(day, time(hour), tzinfo=UTC)


async def issued_on(
    scene: Scene, clock: FrozenClock, day: date, *lines: Lines, due: date
) -> dict[str, Any]:
    """Move the frozen clock to `day` and issue an invoice there (its `issued_on`)."""
    clock.now = at(day)
    invoice = await scene.invoice(*lines, due=due)
    assert invoice["issued_on"] == day.isoformat(), invoice
    return invoice


async def autopay_rows(
    sessionmaker: async_sessionmaker[AsyncSession], invoice_id: Any
) -> list[ScheduledPayment]:
    """AutoPay's unfinished payments of an invoice, oldest first."""
    rows = await scheduled_for_invoice(sessionmaker, invoice_id)
    return [r for r in rows if r.origin == "autopay" and r.status in WAITING]


async def autopay_plan(
    sessionmaker: async_sessionmaker[AsyncSession], invoice_id: Any
) -> list[tuple[int, date, str]]:
    """What AutoPay will pay on an invoice: (amount, day, method id) per payment."""
    return [
        (r.amount, r.scheduled_for, str(r.payment_method_id))
        for r in await autopay_rows(sessionmaker, invoice_id)
    ]
