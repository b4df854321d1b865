"""Drawing an invoice with fpdf2: the head (see `head`), the lines as a table whose heading
is repeated on every page it runs onto (descriptions wrap inside their column, never cut),
then the totals, the payments applied, how to pay, and the notes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fpdf import FontFace
from fpdf.enums import TableBordersLayout

from app.invoices.pdf.document import InvoiceDocument, PdfLine, format_date
from app.invoices.pdf.head import letterhead, parties
from app.invoices.pdf.page import BLACK, GREY, InvoicePage, clean

LINK_BLUE = (20, 80, 170)
TABLE_STYLE = {
    "borders_layout": TableBordersLayout.HORIZONTAL_LINES,
    "headings_style": FontFace(emphasis="BOLD", fill_color=(240, 241, 244)),
    "line_height": 4.5,
    "padding": 1.5,
}


class InvoicePdf(InvoicePage):
    def __init__(
        self, doc: InvoiceDocument, fallback_font: Path | None, *, break_before_line: int = 0
    ) -> None:
        super().__init__(doc, fallback_font)
        # When > 0, this line starts a new page (see `render_invoice_pdf`).
        self.break_before_line = break_before_line
        self.lines_end_page = 0

    def draw(self) -> InvoicePdf:
        self.add_page()
        letterhead(self)
        parties(self)
        lines = self.doc.lines
        cut = self.break_before_line or len(lines)
        self._lines(lines[:cut])
        if lines[cut:]:
            self.add_page()
            self._lines(lines[cut:])
        self.lines_end_page = self.page_no()
        self._totals()
        self._payments()
        self._how_to_pay()
        self._notes()
        return self

    def _lines(self, lines: Sequence[PdfLine]) -> None:
        doc, code = self.doc, self.doc.currency
        with_tax = doc.has_tax
        headings = ["Description", "Service", "Qty", f"Unit price\n({code})"]
        widths: tuple[int, ...] = (78, 32, 14, 28, 28)
        if with_tax:
            headings.append(f"Tax\n({code})")
            widths = (64, 28, 12, 26, 24, 26)
        headings.append(f"Amount\n({code})")
        self.body_font()
        with self.table(
            col_widths=widths,
            text_align=["LEFT", "LEFT"] + ["RIGHT"] * (len(headings) - 2),
            width=self.epw,
            v_align="TOP",
            repeat_headings=1,
            **TABLE_STYLE,
        ) as table:
            table.row(headings)
            for line in lines:
                cells = [
                    clean(line.description),
                    clean(line.category),
                    f"{line.quantity:,}",
                    doc.number_of(line.unit_amount),
                ]
                if with_tax:
                    label = f"\n{clean(line.tax_label)}" if line.tax_label else ""
                    cells.append(doc.number_of(line.tax_amount) + label)
                cells.append(doc.number_of(line.amount))
                table.row(cells)

    def _totals(self) -> None:
        doc = self.doc
        rows: list[tuple[str, str, bool]] = [("Subtotal", doc.money(doc.subtotal), False)]
        rows += [(clean(label), doc.money(amount), False) for label, amount in doc.tax_groups()]
        rows.append(("Total", doc.money(doc.total), True))
        if doc.status != "void":
            if doc.amount_paid or doc.payments:
                rows.append(("Amount paid", doc.money(doc.amount_paid), False))
            rows.append(("Balance due", doc.money(doc.balance), True))
        self.ln(4)
        if self.will_page_break(7 * len(rows)):
            self.add_page()
        with self.table(
            col_widths=(62, 43),
            text_align=("RIGHT", "RIGHT"),
            width=105,
            align="RIGHT",
            borders_layout=TableBordersLayout.NONE,
            first_row_as_headings=False,
            line_height=5,
            padding=(0.8, 1.5),
        ) as table:
            for label, amount, strong in rows:
                style = FontFace(emphasis="BOLD", size_pt=10) if strong else FontFace(size_pt=9)
                table.row((label, amount), style=style)
        if doc.status == "void":
            self.small(GREY)
            self.cell(0, 6, "This invoice is void: nothing is owed.", align="R")
            self.ln(6)

    def _payments(self) -> None:
        doc = self.doc
        if not doc.payments:
            return
        self.heading("Payments", following=20)
        refunds = any(payment.refunded for payment in doc.payments)
        headings = ["Date", "Method", "Amount"] + (["Refunded"] if refunds else [])
        self.body_font()
        with self.table(
            col_widths=(30, 70, 40, 40)[: len(headings)],
            text_align=("LEFT", "LEFT", "RIGHT", "RIGHT")[: len(headings)],
            width=self.epw * len(headings) / 4,
            align="LEFT",
            **TABLE_STYLE,
        ) as table:
            table.row(headings)
            for payment in doc.payments:
                when = format_date(payment.paid_on) if payment.paid_on else "processing"
                cells = [when, clean(payment.method), doc.money(payment.amount)]
                if refunds:
                    cells.append(doc.money(payment.refunded) if payment.refunded else "")
                table.row(cells)

    def _how_to_pay(self) -> None:
        doc = self.doc
        if not doc.owed or not (doc.pay_url or doc.payment_instructions):
            return
        self.body_font()
        height = 7.0 if doc.pay_url else 0.0
        if doc.payment_instructions:
            height += self.text_height(doc.payment_instructions)
        self.heading("How to pay", following=height)
        self.body_font()
        if doc.pay_url:
            self.write(5, "Pay online: ")
            self.set_text_color(*LINK_BLUE)
            self.write(5, doc.pay_url, link=doc.pay_url)
            self.set_text_color(*BLACK)
            self.ln(7)
        if doc.payment_instructions:
            self.multi_cell(self.epw, 5, clean(doc.payment_instructions))

    def _notes(self) -> None:
        if self.doc.memo:
            self.body_font()
            self.heading("Notes", following=min(self.text_height(self.doc.memo), 20))
            self.body_font()
            self.multi_cell(self.epw, 5, clean(self.doc.memo))


def render_invoice_pdf(doc: InvoiceDocument, *, fallback_font: Path | None = None) -> bytes:
    """The invoice as PDF bytes (A4). Text outside the bundled font's scripts needs
    `fallback_font`; without one it prints as empty boxes, and the PDF is still made."""
    pdf = InvoicePdf(doc, fallback_font).draw()
    if pdf.lines_end_page > 1 and pdf.page_no() > pdf.lines_end_page:
        # A table that ran over pages, then totals that ran onto a page with no lines: drawn
        # again with the last line starting that page, so the totals stay with a line and
        # every page shows the table's heading (whenever what follows fits on one page).
        last = len(doc.lines) - 1
        pdf = InvoicePdf(doc, fallback_font, break_before_line=last).draw()
    return bytes(pdf.output())
