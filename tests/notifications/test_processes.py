"""`billing-portal send-notifications` as real processes on the suite's database (PostgreSQL's
FOR UPDATE SKIP LOCKED in the PostgreSQL run): several at once send each message once."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from httpx import AsyncClient

from app.cli import PROJECT_ROOT
from tests.factories import Factory
from tests.notifications.smtp_server import running_mailbox
from tests.payments.helpers import billing_world, open_invoice
from tests.scheduling.processes import cli_env

RUN_TIMEOUT = 120.0


async def test_several_senders_at_once_send_each_message_once(
    factory: Factory, client: AsyncClient, database_url: str, tmp_path: Path, app: Any
) -> None:
    billing = await billing_world(factory, client)
    for _ in range(4):
        await factory.contact(billing.world.tenant, billing.world.client)
    for _ in range(5):
        await open_invoice(client, billing.staff, billing.client_id, billing.category)

    with running_mailbox() as mailbox:
        env = cli_env(
            database_url,
            tmp_path,
            BILLING_SMTP_URL=mailbox.url,
            BILLING_EMAIL_CONCURRENCY="3",
            BILLING_LOG_LEVEL="WARNING",
        )
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app.cli",
                "send-notifications",
                "--once",
                cwd=str(PROJECT_ROOT),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(3)
        ]
        outputs = await asyncio.wait_for(
            asyncio.gather(*(p.communicate() for p in processes)), RUN_TIMEOUT
        )
        for process, (stdout, stderr) in zip(processes, outputs, strict=True):
            assert process.returncode == 0, stderr.decode()
            assert stdout.decode().startswith("emails: ")

    ids = [m["Message-ID"] for m in mailbox.received]
    assert len(ids) == 5 * 5  # five contacts, five invoices
    assert len(set(ids)) == len(ids)
