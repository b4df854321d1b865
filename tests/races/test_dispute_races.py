"""On PostgreSQL, the two billing disputes about one invoice closed at the same moment: the
last one closed resumes the invoice's held payments, whichever commits last."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.disputes.helpers import close, dispute
from tests.scheduling.helpers import TODAY, Scene, scheduled_for_invoice

pytestmark = pytest.mark.postgres_only


async def test_two_disputes_closed_at_once_resume_the_payments(
    scene: Scene, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    for _ in range(6):
        invoice = await scene.invoice((scene.hosting, 1_000), due=TODAY + timedelta(days=3))
        await scene.scheduled(invoice["id"], 1_000, TODAY + timedelta(days=2))
        tickets = [await dispute(scene, invoice["id"]) for _ in range(2)]

        answers = await asyncio.gather(*(close(scene, t) for t in tickets))

        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        (row,) = await scheduled_for_invoice(sessionmaker, invoice["id"])
        assert (row.status, row.hold_reason) == ("scheduled", None)
