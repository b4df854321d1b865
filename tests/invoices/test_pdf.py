"""The invoice as a PDF through the API: staff get any of the tenant's; a client gets its
own issued ones; what the tenant's profile, the client's billing address, the lines, tax
and payments say is on the page a client reads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from httpx import AsyncClient
from PIL import Image
from pypdf import PdfReader

from app.core.clock import today_in
from app.core.config import Settings
from app.invoices.pdf.document import format_date
from tests.factories import Factory, api_key_for, assert_problem, bearer
from tests.invoices.pdf_reading import font_names, in_order, installed_cjk_font, pdf_text
from tests.payments.helpers import (
    API,
    INVOICES,
    NO_SUCH_ID,
    Billing,
    billing_world,
    draft_invoice,
    due_in,
    issue,
    open_invoice,
    pay,
    refund,
)

PUBLIC_URL = "https://billing.northwind.example"


@pytest.fixture
def public_url(app: Any) -> Iterator[Settings]:
    """The app's settings with `BILLING_PUBLIC_URL` set, for this test only."""
    original = app.state.settings
    app.state.settings = original.model_copy(update={"public_url": PUBLIC_URL})
    yield app.state.settings
    app.state.settings = original


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (240, 80), (200, 40, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def assert_pdf(response: Any) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert response.content.rstrip().endswith(b"%%EOF")


async def test_a_client_downloads_its_invoice(
    client: AsyncClient, billing: Billing, invoice: dict[str, Any]
) -> None:
    payment = (await pay(client, billing.contact, invoice["id"], billing.card["id"], 4_000)).json()
    assert (await refund(client, billing.staff, payment["id"], 1_000)).status_code == 201

    response = await client.get(f"{INVOICES}/{invoice['id']}/pdf", headers=billing.contact.headers)

    assert_pdf(response)
    assert "INV-000001.pdf" in response.headers["content-disposition"]


async def test_staff_and_integrations_download_drafts_too(
    client: AsyncClient, factory: Factory, billing: Billing
) -> None:
    draft = await draft_invoice(
        client, billing.staff, billing.client_id, billing.category, memo="Thanks!"
    )
    url = f"{INVOICES}/{draft['id']}/pdf"
    assert_pdf(await client.get(url, headers=billing.staff.headers))
    _key, secret = await api_key_for(factory, billing.world.tenant)
    assert_pdf(await client.get(url, headers=bearer(secret)))
    # ... but the client it is for cannot see it yet.
    assert_problem(await client.get(url, headers=billing.contact.headers), 404)


async def test_text_outside_latin_1_does_not_break_the_pdf(
    client: AsyncClient, billing: Billing
) -> None:
    invoice = await open_invoice(
        client,
        billing.staff,
        billing.client_id,
        billing.category,
        memo="Danke schön — 谢谢 — 🚀 " + "long line " * 200,
    )
    assert_pdf(await client.get(f"{INVOICES}/{invoice['id']}/pdf", headers=billing.contact.headers))


async def test_another_clients_pdf_is_not_found(
    client: AsyncClient, factory: Factory, billing: Billing, invoice: dict[str, Any]
) -> None:
    neighbour = await factory.client(billing.world.tenant, "Globex")
    neighbour_contact = await factory.contact(billing.world.tenant, neighbour)
    theirs = await open_invoice(client, billing.staff, neighbour.id, billing.category)
    elsewhere = await billing_world(factory, client, "Other MSP")

    unknown = await client.get(f"{INVOICES}/{NO_SUCH_ID}/pdf", headers=billing.contact.headers)
    expected = assert_problem(unknown, 404)["detail"]
    for person, invoice_id in (
        (billing.contact, theirs["id"]),
        (neighbour_contact, invoice["id"]),
        (elsewhere.contact, invoice["id"]),
        (elsewhere.staff, invoice["id"]),
    ):
        response = await client.get(f"{INVOICES}/{invoice_id}/pdf", headers=person.headers)
        assert assert_problem(response, 404)["detail"] == expected
        assert b"%PDF" not in response.content
    assert_problem(await client.get(f"{INVOICES}/{invoice['id']}/pdf"), 401)


async def test_the_pdf_a_client_opens_says_everything(
    client: AsyncClient, billing: Billing, public_url: Settings
) -> None:
    staff = billing.staff.headers
    profile = {
        "name": "Northwind Managed IT",
        "legal_name": "Northwind IT Sp. z o.o.",
        "email": "billing@northwind.example",
        "phone": "+48 42 123 45 67",
        "tax_id": "PL7251234567",
        "address": {
            "line1": "ul. Piotrkowska 100",
            "city": "Łódź",
            "postal_code": "90-001",
            "country": "PL",
        },
        "payment_instructions": "Bank transfer: IBAN PL61 1090 1014 0000 0712 1981 2874",
    }
    assert (await client.patch(f"{API}/tenant", json=profile, headers=staff)).status_code == 200
    logo = await client.put(
        f"{API}/tenant/logo", files={"file": ("logo.jpg", jpeg(), "image/jpeg")}, headers=staff
    )
    assert logo.status_code == 200, logo.text
    address = {
        "line1": "12 Harbour Road",
        "line2": "Suite 4",
        "city": "Portland",
        "region": "OR",
        "postal_code": "97201",
        "country": "US",
    }
    updated = await client.patch(
        f"{API}/clients/{billing.client_id}", json={"billing_address": address}, headers=staff
    )
    assert updated.status_code == 200, updated.text
    body = {
        "client_id": str(billing.client_id),
        "currency": "USD",
        "due_date": due_in(30),
        "lines": [
            {
                "description": "Managed web hosting, " + "with nightly backups " * 6,
                "service_category_id": str(billing.category.id),
                "quantity": 1,
                "unit_amount": 14_900,
                "tax_amount": 3_427,
                "tax_label": "VAT 23%",
            },
            {
                "description": "Help desk seats",
                "service_category_id": str(billing.category.id),
                "quantity": 12,
                "unit_amount": 4_500,
                "tax_amount": 12_420,
                "tax_label": "VAT 23%",
            },
        ],
        "memo": "Thank you for your business.",
    }
    created = await client.post(INVOICES, json=body, headers=staff)
    assert created.status_code == 201, created.text
    invoice = await issue(client, billing.staff, created.json()["id"])
    assert (invoice["subtotal"], invoice["tax_total"], invoice["total"]) == (
        68_900,
        15_847,
        84_747,
    )
    paid = await pay(client, billing.contact, invoice["id"], billing.card["id"], 30_000)
    assert paid.status_code == 201, paid.text

    response = await client.get(f"{INVOICES}/{invoice['id']}/pdf", headers=billing.contact.headers)

    assert_pdf(response)
    text = pdf_text(response.content)
    today = format_date(today_in("UTC"))
    for expected in (
        "Northwind Managed IT",
        "Northwind IT Sp. z o.o.",
        "ul. Piotrkowska 100",
        "90-001 Łódź",
        "Poland",
        "billing@northwind.example · +48 42 123 45 67",
        "Tax ID: PL7251234567",
        "BILL TO",
        billing.world.client.name,
        "12 Harbour Road",
        "Suite 4",
        "Portland, OR 97201",
        "United States",
        "billing@acme.example",
        "INV-000001",
        f"Issue date {today}",
        f"Due date {format_date(today_in('UTC').fromisoformat(due_in(30)))}",
        "PARTIALLY PAID",
        "Help desk seats",
        billing.category.name,
        "Subtotal 689.00 USD",
        "VAT 23% 158.47 USD",
        "Total 847.47 USD",
        "Amount paid 300.00 USD",
        "Balance due 547.47 USD",
        f"{today} Visa •••• 4242 300.00 USD",
        f"Pay online: {PUBLIC_URL}/invoices/{invoice['id']}",
        "Bank transfer: IBAN PL61 1090 1014 0000 0712 1981 2874",
        "Thank you for your business.",
        "Page 1 of ",
    ):
        assert expected in text, (expected, text)
    assert in_order(text.split(), body["lines"][0]["description"].split())
    assert len(PdfReader(io.BytesIO(response.content)).pages[0].images) == 1  # the logo


@pytest.mark.parametrize(
    ("state", "stamp"),
    [("draft", "DRAFT"), ("overdue", "OVERDUE"), ("paid", "PAID"), ("void", "VOID")],
)
async def test_the_stamp_follows_the_invoice(
    client: AsyncClient, billing: Billing, state: str, stamp: str
) -> None:
    due = due_in(-1) if state == "overdue" else due_in(30)
    invoice = await draft_invoice(
        client, billing.staff, billing.client_id, billing.category, due_date=due
    )
    if state != "draft":
        invoice = await issue(client, billing.staff, invoice["id"])
    if state == "paid":
        assert (await pay(client, billing.contact, invoice["id"], billing.card["id"])).is_success
    if state == "void":
        voided = await client.post(
            f"{INVOICES}/{invoice['id']}/void", headers=billing.staff.headers
        )
        assert voided.status_code == 200, voided.text

    response = await client.get(f"{INVOICES}/{invoice['id']}/pdf", headers=billing.staff.headers)

    assert_pdf(response)
    assert stamp in pdf_text(response.content).split("\n")


async def test_the_fallback_font_setting_draws_cjk(
    client: AsyncClient, billing: Billing, app: Any
) -> None:
    font = installed_cjk_font()
    if font is None:
        pytest.skip("no CJK font on this machine (Debian: apt-get install fonts-noto-cjk)")
    renamed = await client.patch(
        f"{API}/tenant", json={"name": "東京 Managed IT"}, headers=billing.staff.headers
    )
    assert renamed.status_code == 200, renamed.text
    invoice = await open_invoice(client, billing.staff, billing.client_id, billing.category)
    original = app.state.settings
    app.state.settings = original.model_copy(update={"pdf_fallback_font": font})
    try:
        response = await client.get(
            f"{INVOICES}/{invoice['id']}/pdf", headers=billing.contact.headers
        )
    finally:
        app.state.settings = original

    assert_pdf(response)
    assert "東京 Managed IT" in pdf_text(response.content)
    assert any("CJK" in name for name in font_names(response.content))
