"""The SMTP URL: signing in with the URL's user and password (a real server checks them), and
how each scheme connects (STARTTLS when offered for smtp://, TLS from the start for smtps://)."""

from __future__ import annotations

from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from app.core.config import Settings
from app.notifications import smtp
from app.notifications.smtp import Outgoing, send
from tests.notifications.smtp_server import Mailbox, free_port

OUTGOING = Outgoing(
    message_id="<m1@billing.example.com>",
    kind="invoice_issued",
    to="ann@example.com",
    from_name="Bright IT",
    subject="Invoice",
    text="Hello",
    html="<p>Hello</p>",
)


class Accounts:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login = (data.login.decode(), data.password.decode())
        self.seen.append(login)
        return AuthResult(success=login == ("mailer", "p@ss word"))


# Plain AUTH is what the test needs to see the credentials; it never leaves loopback.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_the_urls_user_and_password_sign_in(settings: Settings) -> None:
    mailbox = Mailbox(port=free_port())
    accounts = Accounts()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=mailbox.port,
        authenticator=accounts,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        good = settings.model_copy(
            update={"smtp_url": f"smtp://mailer:p%40ss%20word@127.0.0.1:{mailbox.port}"}
        )
        assert (await send(OUTGOING, good)).sent
        bad = settings.model_copy(
            update={
                "smtp_url": f"smtp://mailer:wrong@127.0.0.1:{mailbox.port}",
                "smtp_timeout_seconds": 3.0,
            }
        )
        refused = await send(OUTGOING, bad)
        assert not refused.sent  # and left to retry: the password may be fixed meanwhile
    finally:
        controller.stop()
    assert accounts.seen[0] == ("mailer", "p@ss word")
    assert ("mailer", "wrong") in accounts.seen
    (message,) = mailbox.received
    assert message["Message-ID"] == "<m1@billing.example.com>"
    assert message["From"] == "Bright IT <billing@localhost>"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mx.example.com", {"port": 587, "use_tls": False, "start_tls": None}),
        ("smtp://mx.example.com:2525", {"port": 2525, "use_tls": False, "start_tls": None}),
        ("smtps://u:p@mx.example.com", {"port": 465, "use_tls": True, "start_tls": False}),
    ],
)
async def test_each_scheme_connects_as_documented(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, url: str, expected: dict[str, Any]
) -> None:
    calls: list[dict[str, Any]] = []

    async def fake_send(message: Any, **kwargs: Any) -> None:
        calls.append(kwargs)

    monkeypatch.setattr(smtp.aiosmtplib, "send", fake_send)
    assert (await send(OUTGOING, settings.model_copy(update={"smtp_url": url}))).sent
    (call,) = calls
    assert {key: call[key] for key in expected} == expected
    assert call["hostname"] == "mx.example.com"


def test_an_smtp_url_of_another_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="smtp://"):
        Settings(smtp_url="http://mx.example.com")
