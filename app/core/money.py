"""Money everywhere: amounts are integers of the currency's minor unit, bounded by one
maximum; the ISO 4217 codes we accept, with their minor-unit exponent (for display only)."""

from __future__ import annotations

from collections.abc import Sequence

from app.core.errors import Unprocessable

# Ten billion dollars: more is a typo, and it keeps every sum far from a 64-bit overflow.
# One maximum for every amount: a line, an invoice's total, a payment, a refund, a
# scheduled payment (the schemas, the arithmetic below and CHECK constraints all hold it).
MAX_AMOUNT = 10**12
MAX_QUANTITY = 1_000_000


class AmountTooLarge(Unprocessable):
    type_slug = "amount-too-large"
    title = "Amount too large"


def within_maximum(amount: int, *, what: str, loc: Sequence[str | int] = ("body",)) -> int:
    """`amount` itself when no more than MAX_AMOUNT: a sum computed from bounded parts (lines,
    invoices paid at once) can still pass it, and must be refused before it is stored."""
    if amount > MAX_AMOUNT:
        raise AmountTooLarge(f"{what} may be at most {MAX_AMOUNT} minor units.", loc=loc)
    return amount


MINOR_UNITS: dict[str, int] = {
    "AED": 2,
    "AUD": 2,
    "BGN": 2,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CNY": 2,
    "CZK": 2,
    "DKK": 2,
    "EGP": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "ILS": 2,
    "INR": 2,
    "MXN": 2,
    "MYR": 2,
    "NOK": 2,
    "NZD": 2,
    "PHP": 2,
    "PLN": 2,
    "RON": 2,
    "SAR": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TRY": 2,
    "TWD": 2,
    "USD": 2,
    "ZAR": 2,
    "JPY": 0,
    "KRW": 0,
    "CLP": 0,
    "ISK": 0,
    "VND": 0,
    "BHD": 3,
    "JOD": 3,
    "KWD": 3,
    "OMR": 3,
    "TND": 3,
}


def format_number(amount: int, currency: str) -> str:
    """Minor units as the currency writes them, without its code: 123456 USD is `1,234.56`,
    JPY `123,456`, KWD `123.456`."""
    exponent = MINOR_UNITS.get(currency, 2)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent) if exponent else (abs(amount), 0)
    return sign + f"{whole:,}" + (f".{fraction:0{exponent}d}" if exponent else "")


def format_amount(amount: int, currency: str) -> str:
    return f"{format_number(amount, currency)} {currency}"
