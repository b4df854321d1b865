"""Fonts for invoice PDFs.

DejaVu Sans 2.37 (regular and bold, unmodified; its licence is `fonts/LICENSE`) ships with
the package and covers Latin, Greek and Cyrillic. A font for the scripts it lacks (Chinese,
Japanese, Korean …) can be named with `BILLING_PDF_FALLBACK_FONT`: fpdf2 then draws each
character DejaVu has no glyph for with that font.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF

FONT_DIR = Path(__file__).with_name("fonts")
TEXT_FONT = "DejaVuSans"
FALLBACK_FONT = "Fallback"


def add_fonts(pdf: FPDF, fallback: Path | None) -> None:
    pdf.add_font(TEXT_FONT, "", FONT_DIR / "DejaVuSans.ttf")
    pdf.add_font(TEXT_FONT, "B", FONT_DIR / "DejaVuSans-Bold.ttf")
    if fallback is not None:
        # The first face of a collection (.ttc): for Noto Sans CJK, the Japanese one, which
        # draws the Chinese and Korean characters as well.
        pdf.add_font(FALLBACK_FONT, "", fallback)
        # exact_match=False: bold text (headings, totals) falls back to the regular face.
        pdf.set_fallback_fonts([FALLBACK_FONT], exact_match=False)
