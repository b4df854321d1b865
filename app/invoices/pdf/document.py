"""What an invoice PDF says, as plain data: the presenter builds it from the database, the
renderer draws it, and neither needs the other to be tested."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from app.core.money import format_amount, format_number

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
UNLABELLED_TAX = "Tax"


def format_date(day: date) -> str:
    """`16 Oct 2026`: the same in every locale, and never read the wrong way round."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


@dataclass(frozen=True, slots=True)
class Party:
    """Who sends or receives the invoice: a name, then one printed line per detail
    (address lines, email, phone, tax id)."""

    name: str
    details: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Logo:
    """A PNG or JPEG image and its size in pixels (for its proportions on the page)."""

    data: bytes = field(repr=False)
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class PdfLine:
    description: str
    category: str
    quantity: int
    unit_amount: int
    amount: int
    tax_amount: int = 0
    tax_label: str | None = None


@dataclass(frozen=True, slots=True)
class PdfPayment:
    paid_on: date | None
    method: str
    amount: int
    refunded: int = 0


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    seller: Party
    bill_to: Party
    number: str | None
    status: str
    overdue: bool
    issued_on: date | None
    due_date: date
    currency: str
    subtotal: int
    tax_total: int
    total: int
    amount_paid: int
    lines: Sequence[PdfLine]
    payments: Sequence[PdfPayment] = ()
    memo: str | None = None
    pay_url: str | None = None
    payment_instructions: str | None = None
    logo: Logo | None = None

    @property
    def balance(self) -> int:
        return self.total - self.amount_paid

    @property
    def title(self) -> str:
        return f"Invoice {self.number}" if self.number else "Draft invoice"

    @property
    def stamp(self) -> str | None:
        """The word across the top that says where the invoice stands, if anything must."""
        if self.status == "draft":
            return "DRAFT"
        if self.status == "void":
            return "VOID"
        if self.status == "paid":
            return "PAID"
        if self.overdue:
            return "OVERDUE"
        if self.amount_paid > 0:
            return "PARTIALLY PAID"
        return None

    @property
    def owed(self) -> bool:
        """Whether there is something to pay, so the invoice says how."""
        return self.status in ("draft", "open") and self.balance > 0

    @property
    def has_tax(self) -> bool:
        return any(line.tax_amount or line.tax_label for line in self.lines)

    def tax_groups(self) -> list[tuple[str, int]]:
        """Tax summed by label, in the order the labels first appear (a labelled 0, such as a
        reverse charge, is shown too: it is what the label says that matters)."""
        groups: dict[str, int] = {}
        for line in self.lines:
            if line.tax_amount or line.tax_label:
                label = line.tax_label or UNLABELLED_TAX
                groups[label] = groups.get(label, 0) + line.tax_amount
        return list(groups.items())

    def money(self, amount: int) -> str:
        return format_amount(amount, self.currency)

    def number_of(self, amount: int) -> str:
        return format_number(amount, self.currency)
