"""Email fixtures: a real SMTP server on loopback, the app's settings pointed at it, a frozen
clock, and a sender over the app's database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import FrozenClock
from app.core.config import Settings
from app.models import EmailMessage
from app.notifications.outbox import EmailSender
from tests.factories import Factory
from tests.notifications.smtp_server import Mailbox, running_mailbox

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PUBLIC_URL = "https://billing.example.com"


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    with FrozenClock(START) as frozen:
        yield frozen


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with running_mailbox() as running:
        yield running


@pytest.fixture
def mail_settings(app: Any, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings: Settings = app.state.settings
    monkeypatch.setattr(settings, "smtp_url", mailbox.url)
    monkeypatch.setattr(settings, "smtp_timeout_seconds", 5.0)
    monkeypatch.setattr(settings, "public_url", PUBLIC_URL)
    return settings


@dataclass
class Mail:
    http: AsyncClient
    factory: Factory
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    mailbox: Mailbox

    def sender(self) -> EmailSender:
        return EmailSender(self.sessionmaker, self.settings)

    async def send(self) -> dict[str, int]:
        report = await self.sender().run_once()
        return dict(report.outcomes)

    async def rows(self) -> list[EmailMessage]:
        async with self.sessionmaker() as session:
            stmt = select(EmailMessage).order_by(EmailMessage.created_at, EmailMessage.kind)
            return list((await session.execute(stmt)).scalars())


@pytest.fixture
async def mail(
    clock: FrozenClock,
    factory: Factory,
    client: AsyncClient,
    mail_settings: Settings,
    mailbox: Mailbox,
    app: Any,
) -> Mail:
    return Mail(client, factory, mail_settings, app.state.sessionmaker, mailbox)
