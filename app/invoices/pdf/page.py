"""The page every part of the invoice is drawn on: A4, the bundled fonts, and on every page
a footer with the invoice number and "Page x of y" (and, after the first, a line saying
whose invoice it is); with the small drawing helpers the sections share."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos

from app.invoices.pdf.document import InvoiceDocument
from app.invoices.pdf.fonts import TEXT_FONT, add_fonts

MARGIN = 15.0
BLACK = (0, 0, 0)
GREY = (105, 105, 105)
Colour = tuple[int, int, int]
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def clean(text: str) -> str:
    """Tabs and control characters (pasted into a description) print as spaces, never as
    missing glyphs; line breaks stay."""
    return _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))


class InvoicePage(FPDF):
    def __init__(self, doc: InvoiceDocument, fallback_font: Path | None) -> None:
        super().__init__(format="A4")
        self.doc = doc
        add_fonts(self, fallback_font)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=20)
        self.set_title(doc.title)
        self.set_author(doc.seller.name)
        self.set_creator("billing-portal")

    # fpdf2 calls these on every new page, the table's own page breaks included, and puts the
    # font and colours back afterwards.
    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.small(GREY)
        self.cell(self.epw / 2, 5, clean(self.doc.seller.name))
        self.cell(self.epw / 2, 5, self.doc.title, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(3)

    def footer(self) -> None:
        self.set_y(-13)
        self.small(GREY)
        self.cell(self.epw / 2, 5, self.doc.title)
        self.cell(self.epw / 2, 5, f"Page {self.page_no()} of {{nb}}", align="R")

    def small(self, colour: Colour, *, bold: bool = False) -> None:
        self.set_font(TEXT_FONT, "B" if bold else "", 8)
        self.set_text_color(*colour)

    def body_font(self, size: float = 9, *, bold: bool = False) -> None:
        self.set_font(TEXT_FONT, "B" if bold else "", size)
        self.set_text_color(*BLACK)

    def lines_of(self, details: Sequence[str], width: float, *, size: float = 9) -> None:
        self.body_font(size)
        for line in details:
            self.multi_cell(width, 4.5, clean(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def text_height(self, text: str) -> float:
        """How tall `text` will be as a paragraph across the page, in the current font."""
        height = self.multi_cell(
            self.epw, 5, clean(text), dry_run=True, output=MethodReturnValue.HEIGHT
        )
        assert isinstance(height, float | int)
        return float(height)

    def heading(self, title: str, *, following: float) -> None:
        """A section heading, kept on one page with the `following` mm that come after it
        whenever they fit on one page."""
        self.ln(6)
        if self.will_page_break(min(13 + following, self.eph - 20)):
            self.add_page()
        self.body_font(10, bold=True)
        self.cell(0, 6, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)
