"""The invoice PDF as drawn by the pdf module alone, read back with pypdf: every field, the
status stamp, tax, currencies, scripts, and a long invoice over many pages."""

from __future__ import annotations

import io
from datetime import date

import pytest
from PIL import Image
from pypdf import PdfReader

from app.invoices.pdf import InvoiceDocument, Logo, Party, PdfLine, PdfPayment, render_invoice_pdf
from tests.invoices.pdf_reading import (
    TextWidth,
    font_names,
    fragments,
    in_order,
    installed_cjk_font,
    one_line,
    page_texts,
    pdf_text,
    sample,
)


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (20, 90, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def test_every_field_is_on_the_page() -> None:
    doc = sample(
        seller=Party(
            "Northwind Managed IT",
            [
                "Northwind IT Sp. z o.o.",
                "ul. Piotrkowska 100",
                "90-001 Łódź",
                "Poland",
                "billing@northwind.example · +48 42 123 45 67",
                "Tax ID: PL7251234567",
            ],
        ),
        bill_to=Party(
            "Contoso Dental",
            [
                "12 Harbour Road",
                "Suite 4",
                "Portland, OR 97201",
                "United States",
                "ap@contoso.example",
            ],
        ),
        payments=[
            PdfPayment(date(2026, 11, 2), "Visa •••• 4242", 20_000, refunded=1_000),
            PdfPayment(date(2026, 11, 9), "Bank account •••• 6789", 11_000),
        ],
        amount_paid=30_000,
        pay_url="https://billing.northwind.example/invoices/7d9e",
        payment_instructions="Bank transfer to IBAN PL61 1090 1014 0000 0712 1981 2874",
        memo="Thank you for your business.",
        logo=Logo(png(300, 100), 300, 100),
    )

    pdf = render_invoice_pdf(doc)
    text = pdf_text(pdf)

    # The MSP with its address and contact, and whom the invoice is billed to: line by line.
    rows = text.split("\n")
    for party in (doc.seller, doc.bill_to):
        assert in_order(rows, [party.name, *party.details]), party
    for expected in (
        "BILL TO",
        # the invoice
        "INVOICE",
        "INV-000042",
        "16 Oct 2026",
        "15 Nov 2026",
        # the lines, their service and tax
        "Managed web hosting",
        "Hosting",
        "Help desk seats",
        "Help desk",
        "149.00",
        "540.00",
        "43.20",
        # totals: subtotal, tax by label, total, paid, balance
        "Subtotal 689.00 USD",
        "VAT 8% 55.12 USD",
        "Total 744.12 USD",
        "Amount paid 300.00 USD",
        "Balance due 444.12 USD",
        # payments applied, with their dates and methods
        "2 Nov 2026 Visa •••• 4242 200.00 USD 10.00 USD",
        "9 Nov 2026 Bank account •••• 6789 110.00 USD",
        # how to pay
        "Pay online: https://billing.northwind.example/invoices/7d9e",
        "Bank transfer to IBAN PL61 1090 1014 0000 0712 1981 2874",
        "Thank you for your business.",
        "Page 1 of 1",
    ):
        assert expected in text, (expected, text)
    (page,) = PdfReader(io.BytesIO(pdf)).pages
    assert len(page.images) == 1  # the logo
    assert [link["/A"]["/URI"] for link in (a.get_object() for a in page["/Annots"])] == [
        "https://billing.northwind.example/invoices/7d9e"
    ]


@pytest.mark.parametrize(
    ("status", "overdue", "paid", "stamp"),
    [
        ("draft", False, 0, "DRAFT"),
        ("open", False, 0, None),
        ("open", False, 30_000, "PARTIALLY PAID"),
        ("open", True, 0, "OVERDUE"),
        ("open", True, 30_000, "OVERDUE"),
        ("paid", False, 74_412, "PAID"),
        ("void", False, 0, "VOID"),
    ],
)
def test_the_stamp_says_where_the_invoice_stands(
    status: str, overdue: bool, paid: int, stamp: str | None
) -> None:
    doc = sample(status=status, overdue=overdue, amount_paid=paid, payments=[])
    assert doc.stamp == stamp
    words = pdf_text(render_invoice_pdf(doc)).split("\n")
    shown = {
        word for word in ("DRAFT", "PARTIALLY PAID", "OVERDUE", "PAID", "VOID") if word in words
    }
    assert shown == ({stamp} if stamp else set())


def test_only_an_invoice_with_something_owed_says_how_to_pay() -> None:
    extras = {"pay_url": "https://pay.example/invoices/1", "payment_instructions": "Wire to X"}
    open_text = pdf_text(render_invoice_pdf(sample(**extras)))
    assert "How to pay" in open_text
    assert "AMOUNT DUE" in open_text

    paid = pdf_text(render_invoice_pdf(sample(status="paid", amount_paid=74_412, **extras)))
    assert "How to pay" not in paid
    assert "Balance due 0.00 USD" in paid

    void = pdf_text(render_invoice_pdf(sample(status="void", amount_paid=0, payments=[], **extras)))
    assert "How to pay" not in void
    assert "Balance due" not in void
    assert "This invoice is void: nothing is owed." in void


def test_an_invoice_without_tax_has_no_tax_column_or_lines() -> None:
    doc = one_line(
        PdfLine("Managed web hosting", "Hosting", 1, 14_900, 14_900),
    )
    text = pdf_text(render_invoice_pdf(doc))
    assert "Tax\n(USD)" not in text
    assert "Subtotal 149.00 USD" in text
    assert "Total 149.00 USD" in text
    assert "Tax " not in text.replace("Tax ID", "")


def test_tax_is_summed_by_label_in_order_of_appearance() -> None:
    lines = [
        PdfLine("Hosting", "Hosting", 1, 10_000, 10_000, 2_000, "VAT 20%"),
        PdfLine("Licences", "Licences", 1, 5_000, 5_000, 0, "VAT 0% (reverse charge)"),
        PdfLine("Support", "Help desk", 1, 10_000, 10_000, 2_000, "VAT 20%"),
        PdfLine("Levy", "Other", 1, 1_000, 1_000, 50, None),
    ]
    doc = sample(lines=lines, subtotal=26_000, tax_total=4_050, total=30_050, amount_paid=0)
    assert doc.tax_groups() == [("VAT 20%", 4_000), ("VAT 0% (reverse charge)", 0), ("Tax", 50)]

    text = pdf_text(render_invoice_pdf(doc))

    assert in_order(
        text.split("\n"),
        [
            "Subtotal 260.00 USD",
            "VAT 20% 40.00 USD",
            "VAT 0% (reverse charge) 0.00 USD",
            "Tax 0.50 USD",
            "Total 300.50 USD",
        ],
    )


@pytest.mark.parametrize(
    ("currency", "unit", "line", "total"),
    [
        ("USD", 123_456, "1,234.56", "1,234.56 USD"),
        ("EUR", 5, "0.05", "0.05 EUR"),
        ("JPY", 1_234_567, "1,234,567", "1,234,567 JPY"),
        ("KRW", 50_000, "50,000", "50,000 KRW"),
        ("KWD", 1_234_567, "1,234.567", "1,234.567 KWD"),
        ("BHD", 10, "0.010", "0.010 BHD"),
    ],
)
def test_amounts_follow_the_currencys_minor_units(
    currency: str, unit: int, line: str, total: str
) -> None:
    doc = one_line(
        PdfLine("Service", "Hosting", 1, unit, unit),
        currency=currency,
    )
    text = pdf_text(render_invoice_pdf(doc))
    assert f"Unit price\n({currency})" in text
    assert f"1 {line} {line}" in text  # quantity, unit price, amount
    assert f"Total {total}" in text
    assert f"Balance due {total}" in text


def test_latin_greek_and_cyrillic_read_back_intact() -> None:
    doc = one_line(
        PdfLine("Обслуживание серверов — Ελλάδα — Łódź", "Φιλοξενία", 1, 100, 100),
        seller=Party("Łódź Serwis IT", ["ul. Żeromskiego 5", "90-001 Łódź", "Poland"]),
        bill_to=Party("Ελλάδα Υπηρεσίες", ["Москва, Тверская улица 7", "Russia"]),
        memo="Dziękujemy · Ευχαριστούμε · Спасибо",
    )
    text = pdf_text(render_invoice_pdf(doc))
    for word in ("Łódź", "Żeromskiego", "Ελλάδα", "Υπηρεσίες", "Москва", "Тверская"):
        assert word in text, word
    assert "Обслуживание серверов — Ελλάδα — Łódź" in text
    assert "Dziękujemy · Ευχαριστούμε · Спасибо" in text
    assert font_names(render_invoice_pdf(doc)) == {"DejaVuSansBook", "DejaVuSansBold"}


def test_with_a_cjk_fallback_font_chinese_and_japanese_read_back() -> None:
    font = installed_cjk_font()
    if font is None:
        pytest.skip("no CJK font on this machine (Debian: apt-get install fonts-noto-cjk)")
    doc = one_line(
        PdfLine("サーバー保守 Łódź 北京", "Hosting", 1, 100, 100),
        bill_to=Party("東京データ株式会社", ["東京都千代田区1-1", "Japan"]),
    )

    pdf = render_invoice_pdf(doc, fallback_font=font)

    text = pdf_text(pdf)
    for expected in ("東京データ株式会社", "東京都千代田区1-1", "サーバー保守 Łódź 北京"):
        assert expected in text, (expected, text)
    # The CJK characters are drawn with the fallback font; the rest stays in DejaVu Sans.
    assert any(name.startswith("NotoSansCJK") or "CJK" in name for name in font_names(pdf))
    assert "DejaVuSansBook" in font_names(pdf)


def test_text_no_font_has_and_control_characters_do_not_break_the_pdf() -> None:
    doc = one_line(
        PdfLine("Tab\there, NUL\x00there, bell\x07 and 🚀 東京", "Hosting", 1, 100, 100),
        memo="Line one\r\nLine two\rLine three",
    )
    text = pdf_text(render_invoice_pdf(doc))
    assert "Tab here, NUL there, bell  and" in text
    assert in_order(text.split("\n"), ["Line one", "Line two", "Line three"])


WORDS = (  # noqa: SIM905
    "managed backup of the accounting server with nightly verification offsite replication "
    "to the secondary datacenter firewall rules review patching of every workstation and "
    "endpoint protection licences renewed for the remote office"
).split()


def long_invoice(count: int = 70) -> InvoiceDocument:
    lines = []
    for index in range(count):
        words = [f"item-{index:02d}:"] + WORDS[: 8 + (index * 7) % (len(WORDS) - 8)] * 2
        lines.append(
            PdfLine(
                " ".join(words)[:500],
                "Network monitoring and security" if index % 2 else "Help desk",
                index % 4 + 1,
                10_000 + index,
                (10_000 + index) * (index % 4 + 1),
                500 if index % 3 else 0,
                "VAT 5%" if index % 3 else None,
            )
        )
    subtotal = sum(line.amount for line in lines)
    tax = sum(line.tax_amount for line in lines)
    return sample(
        number="INV-000070",
        lines=lines,
        subtotal=subtotal,
        tax_total=tax,
        total=subtotal + tax,
        pay_url="https://billing.northwind.example/invoices/70",
        payment_instructions="Bank transfer: IBAN PL61 1090 1014 0000 0712 1981 2874",
        memo="Thank you.",
    )


def test_a_long_invoice_keeps_its_heading_number_and_page_count_on_every_page() -> None:
    doc = long_invoice()
    pdf = render_invoice_pdf(doc)
    pages = page_texts(pdf)

    assert len(pages) >= 4
    for number, text in enumerate(pages, start=1):
        rows = text.split("\n")
        assert f"Invoice INV-000070 Page {number} of {len(pages)}" in rows[-1], rows[-1]
        assert "Description Service Qty Unit price" in rows, (number, rows)
        assert any(row.startswith("item-") for row in rows), f"page {number} has no line"
    # No line lost, none out of order, no word of a description missing or moved.
    tokens = "\n".join(pages).split()
    position = 0
    for line in doc.lines:
        position = in_order(tokens, line.description.split(), position)
    assert in_order(tokens, ["Subtotal", "Total", "Balance", "due"], position)


def test_descriptions_wrap_inside_their_column() -> None:
    pdf = render_invoice_pdf(long_invoice(12))
    width = TextWidth()
    for page in range(len(page_texts(pdf))):
        drawn = fragments(pdf, page)
        (heading,) = [f for f in drawn if f.text.strip() == "Description" and f.bold]
        (service,) = [f for f in drawn if f.text.strip() == "Service" and f.bold]
        descriptions = [f for f in drawn if abs(f.x - heading.x) < 0.5 and f.y < heading.y]
        assert descriptions
        for fragment in descriptions:
            # The next column's text starts a cell padding (1.5 mm) past its edge.
            assert fragment.x + width(fragment) <= service.x - 1.5 * 72 / 25.4, fragment


def test_a_word_too_long_for_its_column_is_broken_not_cut() -> None:
    token = "https://portal.example/tickets/" + "a1b2c3d4" * 8
    doc = one_line(
        PdfLine(f"See {token} for details", "Hosting", 1, 100, 100),
    )
    text = pdf_text(render_invoice_pdf(doc))
    assert token in text.replace("\n", "")
