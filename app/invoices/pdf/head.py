"""The first page's head: the MSP's letterhead (logo, name, address, contact) beside the
invoice's number, dates and standing; then whom it is billed to beside the amount due."""

from __future__ import annotations

import io

from fpdf.enums import XPos, YPos

from app.invoices.pdf.document import format_date
from app.invoices.pdf.page import BLACK, GREY, MARGIN, InvoicePage, clean

LOGO_BOX = (60.0, 18.0)  # at most this wide and this tall, in mm
LEFT_SHARE = 0.6  # of the page's width, for the parties; the rest for the invoice's facts
STAMP_COLOURS = {
    "PAID": (22, 128, 61),
    "OVERDUE": (190, 30, 45),
    "PARTIALLY PAID": (176, 92, 0),
    "VOID": GREY,
    "DRAFT": GREY,
}


def letterhead(pdf: InvoicePage) -> None:
    doc, top = pdf.doc, pdf.get_y()
    left = pdf.epw * LEFT_SHARE
    if doc.logo is not None:
        box_w, box_h = LOGO_BOX
        ratio = doc.logo.width / doc.logo.height
        height = min(box_h, box_w / ratio)
        pdf.image(io.BytesIO(doc.logo.data), x=MARGIN, y=top, h=height, w=height * ratio)
        pdf.set_y(top + height + 3)
    pdf.body_font(13, bold=True)
    pdf.multi_cell(left, 6, clean(doc.seller.name), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.lines_of(doc.seller.details, left)
    bottom = pdf.get_y()

    right, x = pdf.epw - left, MARGIN + left
    pdf.set_xy(x, top)
    pdf.body_font(20, bold=True)
    pdf.cell(right, 10, "INVOICE", align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    issued = format_date(doc.issued_on) if doc.issued_on else "not yet issued"
    for label, value in (
        ("Invoice number", doc.number or "Draft"),
        ("Issue date", issued),
        ("Due date", format_date(doc.due_date)),
    ):
        pdf.small(GREY)
        pdf.cell(right * 0.45, 5, label, align="R")
        pdf.body_font(bold=True)
        pdf.cell(right * 0.55, 5, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_x(x)
    if doc.stamp:
        stamp(pdf, doc.stamp, right_edge=x + right)
    pdf.set_y(max(bottom, pdf.get_y()) + 8)


def stamp(pdf: InvoicePage, word: str, *, right_edge: float) -> None:
    colour = STAMP_COLOURS[word]
    pdf.body_font(12, bold=True)
    width = pdf.get_string_width(word) + 8
    pdf.set_xy(right_edge - width, pdf.get_y() + 3)
    pdf.set_draw_color(*colour)
    pdf.set_text_color(*colour)
    pdf.set_line_width(0.6)
    pdf.cell(width, 8, word, border=1, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_line_width(0.2)
    pdf.set_draw_color(*BLACK)
    pdf.set_text_color(*BLACK)


def parties(pdf: InvoicePage) -> None:
    doc, top = pdf.doc, pdf.get_y()
    left = pdf.epw * LEFT_SHARE
    pdf.small(GREY, bold=True)
    pdf.cell(left, 5, "BILL TO", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.body_font(11, bold=True)
    pdf.multi_cell(left, 5.5, clean(doc.bill_to.name), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.lines_of(doc.bill_to.details, left)
    bottom = pdf.get_y()
    if doc.owed:
        right, x = pdf.epw - left, MARGIN + left
        pdf.set_xy(x, top)
        pdf.small(GREY, bold=True)
        pdf.cell(right, 5, "AMOUNT DUE", align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.body_font(16, bold=True)
        pdf.cell(right, 8, doc.money(doc.balance), align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.small(GREY)
        pdf.cell(right, 5, f"due {format_date(doc.due_date)}", align="R")
    pdf.set_text_color(*BLACK)
    pdf.set_y(max(bottom, pdf.get_y()) + 8)
