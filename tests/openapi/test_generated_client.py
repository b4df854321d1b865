"""A client generated from the served document with openapi-python-client reads every answer
as a typed object, errors included: the scenario an integration or an app would run (sign in,
invoices, a card, payments with an Idempotency-Key, a decline, validation errors, the PDF, a
ticket, a webhook endpoint), against the app on a real loopback server."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from app.cli import PROJECT_ROOT
from app.core.clock import today_in
from app.core.errors import problem_type_uri
from tests.factories import PASSWORD, Factory
from tests.openapi.live import serving

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
CLIENT_CONFIG = PROJECT_ROOT / "openapi" / "python-client.yaml"
PACKAGE = "billing_portal_client"
GENERATION_SECONDS = 300


async def generate(document: dict[str, Any], folder: Path) -> Path:
    """The generator run as a consumer runs it, with the config the repository ships."""
    spec = folder / "openapi.json"
    spec.write_text(json.dumps(document))
    process = await asyncio.create_subprocess_exec(
        str(GENERATOR),
        "generate",
        "--path",
        str(spec),
        "--config",
        str(CLIENT_CONFIG),
        "--output-path",
        str(folder / "client"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), GENERATION_SECONDS)
    text = output.decode()
    assert process.returncode == 0, text
    # The generator skips what it cannot read (a content type, a schema) with a warning.
    assert "Warning" not in text and "Unable" not in text, text
    return folder / "client"


@pytest.fixture
def imported(tmp_path: Path) -> Iterator[list[Path]]:
    """Where the generated package is imported from; forgotten after the test."""
    places: list[Path] = []
    yield places
    for place in places:
        sys.path.remove(str(place))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def load(folder: Path, places: list[Path]) -> ModuleType:
    sys.path.insert(0, str(folder))
    places.append(folder)
    return importlib.import_module(PACKAGE)


def part(module: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{module}")


def endpoint(tag: str, operation: str) -> Any:
    """The generated module of one operation: `.asyncio()` gives the typed answer,
    `.asyncio_detailed()` the status and headers too."""
    return part(f"api.{tag}.{operation}")


async def test_a_generated_client_runs_the_whole_scenario_with_typed_answers(
    app: Any,
    factory: Factory,
    tmp_path: Path,
    imported: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The webhook endpoint below is on loopback, as in development.
    monkeypatch.setattr(app.state.settings, "webhooks_allow_private_urls", True)
    world = await factory.world()
    category = await factory.category(world.tenant)
    async with serving(app) as origin:
        async with httpx.AsyncClient(base_url=origin) as raw:
            served = (await raw.get("/openapi.json")).json()
        package = load(await generate(served, tmp_path), imported)
        models = part("models")
        list_invoices = endpoint("invoices", "list_invoices")
        pay = endpoint("invoices", "pay_invoice")
        add_method = endpoint("payment_methods", "create_payment_method")
        anonymous = package.Client(base_url=origin, raise_on_unexpected_status=True)

        async def sign_in(email: str) -> Any:
            form = models.SignInForm(username=email, password=PASSWORD)
            tokens = await endpoint("auth", "sign_in").asyncio(client=anonymous, body=form)
            assert isinstance(tokens, models.TokenPair), tokens
            return package.AuthenticatedClient(
                base_url=origin, token=tokens.access_token, raise_on_unexpected_status=True
            )

        # Staff draft and issue two invoices; the client's contact signs in and sees them.
        staff = await sign_in(world.staff.user.email)
        due = today_in("UTC") + timedelta(days=30)
        issued = []
        for amount in (12_500, 4_000):
            line = models.InvoiceLineIn(
                description="Managed hosting",
                service_category_id=category.id,
                quantity=1,
                unit_amount=amount,
            )
            body = models.InvoiceCreate(
                client_id=world.client.id, currency="USD", due_date=due, lines=[line]
            )
            draft = await endpoint("invoices", "create_invoice").asyncio(client=staff, body=body)
            assert isinstance(draft, models.InvoiceDetail), draft
            opened = await endpoint("invoices", "issue_invoice").asyncio(draft.id, client=staff)
            assert isinstance(opened, models.InvoiceDetail), opened
            assert opened.status is models.InvoiceStatus.OPEN
            issued.append(opened)

        contact = await sign_in(world.contact.user.email)
        page = await list_invoices.asyncio(client=contact, status=models.InvoiceStatus.OPEN)
        assert isinstance(page, models.InvoicePage), page
        assert {i.id for i in page.items} == {i.id for i in issued}
        first, second = issued

        # A card on file, then the first invoice paid with an Idempotency-Key, twice.
        card = await add_method.asyncio(
            client=contact,
            body=models.PaymentMethodCreate(type_=models.PaymentMethodType.CARD, token="tok_visa"),
        )
        assert isinstance(card, models.PaymentMethodOut), card
        assert card.last4 == "4242"
        order = models.PayInvoice(payment_method_id=card.id)
        paid = await pay.asyncio_detailed(
            first.id, client=contact, body=order, idempotency_key="pay-first-1"
        )
        again = await pay.asyncio_detailed(
            first.id, client=contact, body=order, idempotency_key="pay-first-1"
        )
        assert paid.status_code == 201, paid.content
        assert isinstance(paid.parsed, models.PaymentDetail), paid.parsed
        assert paid.parsed.status is models.PaymentStatus.SUCCEEDED
        assert paid.parsed.amount == 12_500
        assert isinstance(again.parsed, models.PaymentDetail), again.parsed
        assert again.parsed.id == paid.parsed.id
        assert again.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in paid.headers

        # A declined card: a typed problem carrying the gateway's decline code.
        declining = await add_method.asyncio(
            client=contact,
            body=models.PaymentMethodCreate(
                type_=models.PaymentMethodType.CARD, token="tok_chargeDeclined"
            ),
        )
        declined = await pay.asyncio_detailed(
            second.id,
            client=contact,
            body=models.PayInvoice(payment_method_id=declining.id),
            idempotency_key="pay-second-1",
        )
        assert declined.status_code == 402
        assert isinstance(declined.parsed, models.Problem), declined.parsed
        assert declined.parsed.decline_code == "card_declined"
        assert declined.parsed.type_ == problem_type_uri("payment-declined")
        assert declined.parsed.request_id == declined.headers["X-Request-Id"]

        # A validation error: a typed problem listing where and why.
        invalid = await list_invoices.asyncio_detailed(client=contact, limit=0)
        assert invalid.status_code == 422
        assert isinstance(invalid.parsed, models.ValidationProblem), invalid.parsed
        (error,) = invalid.parsed.errors
        assert isinstance(error, models.FieldError)
        assert error.loc == ["query", "limit"]
        too_much = await pay.asyncio(
            second.id,
            client=contact,
            body=models.PayInvoice(payment_method_id=card.id, amount=4_001),
        )
        assert isinstance(too_much, models.ValidationProblem), too_much
        assert too_much.status == 422
        assert too_much.errors

        # Not found is typed too (another id, or another client's).
        missing = await endpoint("invoices", "get_invoice").asyncio(world.client.id, client=contact)
        assert isinstance(missing, models.Problem), missing
        assert missing.status == 404

        # The PDF as bytes.
        pdf = await endpoint("invoices", "get_invoice_pdf").asyncio(first.id, client=contact)
        assert isinstance(pdf, part("types").File), pdf
        assert pdf.payload.read().startswith(b"%PDF-")

        # A service ticket.
        ticket = await endpoint("tickets", "create_ticket").asyncio(
            client=contact,
            body=models.TicketCreate(subject="VPN down", description="Since 9:00 today."),
        )
        assert ticket.subject == "VPN down", ticket
        assert ticket.status is models.TicketStatus.OPEN

        # A webhook endpoint for the payments, its signing secret shown this once.
        hook = await endpoint("webhooks", "create_webhook_endpoint").asyncio(
            client=staff,
            body=models.WebhookEndpointCreate(
                url=f"{origin}/hooks", event_types=["payment.succeeded", "payment.failed"]
            ),
        )
        assert isinstance(hook, models.WebhookEndpointSecret), hook
        assert hook.secret.startswith("whsec_")
        hooks = await endpoint("webhooks", "list_webhook_endpoints").asyncio(client=staff)
        assert isinstance(hooks, models.WebhookEndpointPage), hooks
        assert [h.id for h in hooks.items] == [hook.id]
