"""What the invoice PDF needs from outside the code: its two settings, and the font that
ships with the package."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from pydantic import ValidationError

from app.core.config import Settings
from app.invoices.pdf.fonts import FONT_DIR
from tests.core.test_settings import clean_environment

__all__ = ["clean_environment"]  # the autouse fixture: only what a test sets counts

ROOT = Path(__file__).resolve().parents[2]


def settings_from_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_the_public_url_is_read_and_its_trailing_slash_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from_env(monkeypatch, BILLING_PUBLIC_URL="https://billing.example.com/")
    assert settings.public_url == "https://billing.example.com"
    monkeypatch.delenv("BILLING_PUBLIC_URL")
    assert Settings().public_url is None
    assert Settings(public_url="http://127.0.0.1:8000").public_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize("url", ["billing.example.com", "ftp://billing.example.com", "https://"])
def test_a_public_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="public_url"):
        Settings(public_url=url)


def test_the_fallback_font_must_be_a_font_file_that_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    font = FONT_DIR / "DejaVuSans.ttf"
    assert (
        settings_from_env(monkeypatch, BILLING_PDF_FALLBACK_FONT=str(font)).pdf_fallback_font
        == font
    )
    with pytest.raises(ValidationError, match="no font file"):
        Settings(pdf_fallback_font=tmp_path / "missing.ttc")
    (tmp_path / "font.woff").write_bytes(b"wOFF")
    with pytest.raises(ValidationError, match=r"\.ttf, \.otf or \.ttc"):
        Settings(pdf_fallback_font=tmp_path / "font.woff")


def test_the_bundled_font_covers_latin_greek_and_cyrillic() -> None:
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        covered = TTFont(FONT_DIR / name).getBestCmap()
        for text in ("Łódź Żółć ß é ø", "Ελλάδα Αθήνα", "Москва Київ Ђ", "€ £ ¥ — “ ” … •"):
            missing = [char for char in text if char != " " and ord(char) not in covered]
            assert not missing, (name, missing)
    assert "Bitstream Vera" in (FONT_DIR / "LICENSE").read_text()


def test_the_fonts_and_their_licence_are_package_data() -> None:
    """An installed package (a wheel, the Docker image) has the fonts only if setuptools is
    told to include them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["app.invoices.pdf"]
    package_dir = ROOT / "app" / "invoices" / "pdf"
    shipped = sorted(path.relative_to(package_dir).as_posix() for path in FONT_DIR.iterdir())
    assert shipped == ["fonts/DejaVuSans-Bold.ttf", "fonts/DejaVuSans.ttf", "fonts/LICENSE"]
    for path in shipped:
        assert any(fnmatch.fnmatch(path, pattern) for pattern in patterns), path
