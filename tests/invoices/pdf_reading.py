"""Reading an invoice PDF back as a client's PDF reader would, with pypdf: the text of each
page, and where on the page each piece of text was drawn."""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from fpdf import FPDF
from pypdf import PdfReader

from app.invoices.pdf import InvoiceDocument, Party, PdfLine, PdfPayment
from app.invoices.pdf.fonts import FONT_DIR, TEXT_FONT

CJK_FONTS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"),
)


def page_texts(pdf: bytes) -> list[str]:
    """Each page's text. pypdf reads the two-byte codes of a CFF-based CJK font (Noto Sans CJK,
    embedded with its own encoding CMap) one byte at a time, leaving a NUL before each such
    character; the PDF itself is right (poppler's pdftotext reads it whole), so the NULs go."""
    reader = PdfReader(io.BytesIO(pdf))
    return [page.extract_text().replace("\x00", "") for page in reader.pages]


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page_texts(pdf))


def font_names(pdf: bytes) -> set[str]:
    """The base names of the fonts the pages use (subset prefixes dropped)."""
    names: set[str] = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]).split("+", 1)[-1])
    return names


@dataclass(frozen=True)
class Fragment:
    """A run of text as drawn: its left edge and baseline in points, its size and font."""

    x: float
    y: float
    size: float
    bold: bool
    text: str


def fragments(pdf: bytes, page_number: int) -> list[Fragment]:
    found: list[Fragment] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip() and font is not None:
            bold = "Bold" in str(font.get("/BaseFont", ""))
            found.append(Fragment(tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5], size, bold, text))

    PdfReader(io.BytesIO(pdf)).pages[page_number].extract_text(visitor_text=visit)
    return found


class TextWidth:
    """How wide a piece of text is drawn in the bundled font, in points."""

    def __init__(self) -> None:
        self.pdf = FPDF(unit="pt")
        self.pdf.add_font(TEXT_FONT, "", FONT_DIR / "DejaVuSans.ttf")
        self.pdf.add_font(TEXT_FONT, "B", FONT_DIR / "DejaVuSans-Bold.ttf")

    def __call__(self, fragment: Fragment) -> float:
        self.pdf.set_font(TEXT_FONT, "B" if fragment.bold else "", fragment.size)
        return float(self.pdf.get_string_width(fragment.text.strip()))


def in_order(tokens: list[str], words: list[str], start: int = 0) -> int:
    """The position just after `words` found in `tokens` in this order (others may come
    between), from `start`; fails naming the first word that is missing."""
    position = start
    for word in words:
        try:
            position = tokens.index(word, position) + 1
        except ValueError:
            raise AssertionError(f"{word!r} is missing after token {position}") from None
    return position


def installed_cjk_font() -> Path | None:
    for path in CJK_FONTS:
        if path.is_file():
            return path
    if fc_list := shutil.which("fc-list"):
        listed = subprocess.run(
            [fc_list, ":lang=ja", "file"], capture_output=True, text=True, check=False
        ).stdout
        for line in listed.splitlines():
            path = Path(line.split(":", 1)[0].strip())
            if path.suffix.lower() in (".ttf", ".otf", ".ttc") and path.is_file():
                return path
    return None


def sample(**overrides: Any) -> InvoiceDocument:
    """An open invoice with everything an invoice can carry."""
    values: dict[str, Any] = {
        "seller": Party(
            "Northwind Managed IT",
            ["Northwind IT Sp. z o.o.", "ul. Piotrkowska 100", "90-001 Łódź", "Poland"],
        ),
        "bill_to": Party(
            "Contoso Dental", ["12 Harbour Road", "Portland, OR 97201", "United States"]
        ),
        "number": "INV-000042",
        "status": "open",
        "overdue": False,
        "issued_on": date(2026, 10, 16),
        "due_date": date(2026, 11, 15),
        "currency": "USD",
        "subtotal": 68_900,
        "tax_total": 5_512,
        "total": 74_412,
        "amount_paid": 30_000,
        "lines": [
            PdfLine("Managed web hosting", "Hosting", 1, 14_900, 14_900, 1_192, "VAT 8%"),
            PdfLine("Help desk seats", "Help desk", 12, 4_500, 54_000, 4_320, "VAT 8%"),
        ],
        "payments": [PdfPayment(date(2026, 11, 2), "Visa •••• 4242", 30_000)],
    }
    values.update(overrides)
    return InvoiceDocument(**values)


def one_line(line: PdfLine, **overrides: Any) -> InvoiceDocument:
    """The sample with this one line (its tax added to the total) and nothing paid yet."""
    values: dict[str, Any] = {
        "lines": [line],
        "subtotal": line.amount,
        "tax_total": line.tax_amount,
        "total": line.amount + line.tax_amount,
        "amount_paid": 0,
        "payments": [],
    }
    return sample(**{**values, **overrides})
