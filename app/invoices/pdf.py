"""The invoice as a PDF: MSP and client, lines, totals, payments and balance.

fpdf2's built-in fonts cover Latin-1 only; other characters are shown as '?', so a PDF
can always be produced (a Unicode TTF would need shipping a font file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from fpdf import FPDF

from app.core.money import format_amount


@dataclass(frozen=True, slots=True)
class PdfLine:
    description: str
    category: str
    quantity: int
    unit_amount: int
    amount: int


@dataclass(frozen=True, slots=True)
class PdfPayment:
    paid_at: datetime | None
    amount: int
    refunded: int


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    msp_name: str
    client_name: str
    client_email: str | None
    number: str | None
    status: str
    issued_on: date | None
    due_date: date
    currency: str
    total: int
    amount_paid: int
    balance: int
    memo: str | None
    lines: Sequence[PdfLine]
    payments: Sequence[PdfPayment]


# Punctuation people type (or paste) every day, outside Latin-1: shown as its plain twin
# rather than as '?'.
_PLAIN = str.maketrans(
    {
        "\u2013": "-",
        "\u2014": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2026": "...",
        "\u00a0": " ",
        "\u20ac": "EUR",
    }
)


def _text(value: str) -> str:
    return value.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()

    def money(amount: int) -> str:
        return format_amount(amount, doc.currency)

    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, _text(doc.msp_name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    title = f"Invoice {doc.number}" if doc.number else "Draft invoice"
    pdf.cell(0, 8, _text(f"{title}  ({doc.status})"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.cell(0, 6, _text(f"Bill to: {doc.client_name}"), new_x="LMARGIN", new_y="NEXT")
    if doc.client_email:
        pdf.cell(0, 6, _text(doc.client_email), new_x="LMARGIN", new_y="NEXT")
    issued = doc.issued_on.isoformat() if doc.issued_on else "not issued"
    pdf.cell(
        0, 6, f"Issued: {issued}    Due: {doc.due_date.isoformat()}", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.ln(4)

    widths = (80, 35, 15, 30, 30)
    pdf.set_font("Helvetica", "B", 10)
    for width, head in zip(
        widths, ("Description", "Service", "Qty", "Unit", "Amount"), strict=True
    ):
        pdf.cell(width, 7, head, border="B")
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    for line in doc.lines:
        cells = (
            line.description[:60],
            line.category[:22],
            str(line.quantity),
            money(line.unit_amount),
            money(line.amount),
        )
        for width, value in zip(widths, cells, strict=True):
            pdf.cell(width, 7, _text(value))
        pdf.ln()
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    for label, amount in (
        ("Total", doc.total),
        ("Paid", doc.amount_paid),
        ("Balance due", doc.balance),
    ):
        pdf.cell(160, 7, label, align="R")
        pdf.cell(30, 7, money(amount), align="R", new_x="LMARGIN", new_y="NEXT")
    if doc.payments:
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(0, 7, "Payments", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for payment in doc.payments:
            when = payment.paid_at.date().isoformat() if payment.paid_at else "pending"
            refunded = f" (refunded {money(payment.refunded)})" if payment.refunded else ""
            pdf.cell(
                0,
                6,
                _text(f"{when}  {money(payment.amount)}{refunded}"),
                new_x="LMARGIN",
                new_y="NEXT",
            )
    if doc.memo:
        pdf.ln(4)
        pdf.multi_cell(0, 6, _text(doc.memo))
    return bytes(pdf.output())
