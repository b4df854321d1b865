"""What the invoice PDF says, read back out of its (deflated) page streams."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, date, datetime

from app.invoices.pdf import InvoiceDocument, PdfLine, PdfPayment, render_invoice_pdf


def page_text(pdf: bytes) -> str:
    """The text shown on the pages: every deflated stream, its `(...) Tj` strings joined."""
    shown: list[str] = []
    for raw in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            content = zlib.decompress(raw).decode("latin-1")
        except zlib.error:
            continue
        shown += re.findall(r"\(((?:\\.|[^\\)])*)\)\s*Tj", content)
    return "\n".join(shown).replace("\\(", "(").replace("\\)", ")")


def document(**overrides: object) -> InvoiceDocument:
    values: dict[str, object] = {
        "msp_name": "Northwind Managed IT",
        "client_name": "Contoso Dental",
        "client_email": "billing@contoso.example",
        "number": "INV-000042",
        "status": "open",
        "issued_on": date(2026, 10, 16),
        "due_date": date(2026, 11, 15),
        "currency": "USD",
        "total": 81_400,
        "amount_paid": 30_000,
        "balance": 51_400,
        "memo": "Thanks \u2014 see \u201cterms\u201d\u2026",
        "lines": [
            PdfLine("Managed web hosting", "Hosting", 1, 14_900, 14_900),
            PdfLine("Help desk seats", "Help desk", 12, 4_500, 54_000),
        ],
        "payments": [PdfPayment(datetime(2026, 11, 20, tzinfo=UTC), 30_000, 1_000)],
    }
    values.update(overrides)
    return InvoiceDocument(**values)  # type: ignore[arg-type]


def test_the_pdf_shows_parties_lines_totals_payments_and_balance() -> None:
    text = page_text(render_invoice_pdf(document()))

    for expected in (
        "Northwind Managed IT",
        "Bill to: Contoso Dental",
        "Invoice INV-000042",
        "Issued: 2026-10-16",
        "Due: 2026-11-15",
        "Managed web hosting",
        "Help desk seats",
        "540.00 USD",
        "814.00 USD",
        "300.00 USD",
        "Balance due",
        "514.00 USD",
        "2026-11-20  300.00 USD (refunded 10.00 USD)",
    ):
        assert expected in text, (expected, text)


def test_everyday_punctuation_is_shown_plainly_and_the_rest_as_question_marks() -> None:
    text = page_text(
        render_invoice_pdf(document(memo="Thanks \u2014 \u201cterms\u201d\u2026 \u8c22"))
    )

    assert 'Thanks - "terms"... ?' in text


def test_amounts_follow_the_currencys_minor_units() -> None:
    text = page_text(
        render_invoice_pdf(
            document(currency="JPY", total=5_000, amount_paid=0, balance=5_000, payments=[])
        )
    )

    assert "5,000 JPY" in text
