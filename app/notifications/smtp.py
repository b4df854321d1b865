"""Handing one message to the SMTP server (aiosmtplib), or to the log when none is set.

`smtp://` upgrades with STARTTLS when the server offers it; `smtps://` speaks TLS from the
start; `user:pass@` in the URL signs in. The Message-ID is the outbox row's, so a message sent
again after a crash is recognisably the same one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, formataddr
from urllib.parse import unquote, urlsplit

import aiosmtplib

from app.core.clock import utcnow
from app.core.config import Settings

logger = logging.getLogger("billing_portal.email")


@dataclass(frozen=True, slots=True)
class Outgoing:
    message_id: str
    kind: str
    to: str
    from_name: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class SendResult:
    error: str | None = None
    # A refusal that another try would meet again (5xx): the message fails at once.
    permanent: bool = False

    @property
    def sent(self) -> bool:
        return self.error is None


def mime(outgoing: Outgoing, settings: Settings) -> MimeMessage:
    message = MimeMessage()
    message["From"] = formataddr((outgoing.from_name, settings.smtp_from))
    message["To"] = outgoing.to
    message["Subject"] = outgoing.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = outgoing.message_id
    message["X-Billing-Kind"] = outgoing.kind
    message.set_content(outgoing.text)
    message.add_alternative(outgoing.html, subtype="html")
    return message


async def send(outgoing: Outgoing, settings: Settings) -> SendResult:
    message = mime(outgoing, settings)
    if settings.smtp_url is None:
        logger.info(
            "email (no SMTP configured)",
            extra={
                "message_id": outgoing.message_id,
                "kind": outgoing.kind,
                "to": outgoing.to,
                "subject": outgoing.subject,
                "text": outgoing.text,
            },
        )
        return SendResult()
    url = urlsplit(settings.smtp_url)
    implicit = url.scheme == "smtps"
    try:
        await aiosmtplib.send(
            message,
            hostname=url.hostname,
            port=url.port or (465 if implicit else 587),
            username=unquote(url.username) if url.username else None,
            password=unquote(url.password) if url.password else None,
            use_tls=implicit,
            # None: STARTTLS when the server offers it, plain otherwise.
            start_tls=False if implicit else None,
            timeout=settings.smtp_timeout_seconds,
        )
    except aiosmtplib.SMTPResponseException as exc:
        return SendResult(f"SMTP {exc.code}: {exc.message}"[:300], permanent=exc.code >= 500)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        permanent = all(code >= 500 for code in codes)
        return SendResult(f"recipient refused: {codes}"[:300], permanent=permanent)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return SendResult(f"{type(exc).__name__}: {exc}"[:300])
    return SendResult()
