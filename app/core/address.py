"""Postal addresses (the MSP's, a client's billing address): the shape the API takes and
returns, how it is kept (six columns under a prefix), and how it is printed on a document."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from app.core.countries import COUNTRY_NAMES
from app.core.schemas import StrictBody

ADDRESS_PARTS = ("line1", "line2", "city", "region", "postal_code", "country")
# Countries that write "City, REGION POSTAL" on one line; the rest mostly "POSTAL City".
_CITY_REGION_POSTAL = {"US", "CA", "AU"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(value: str | None) -> str | None:
    """Trimmed, a blank part becomes absent; line breaks and control characters are refused."""
    if value is None:
        return None
    if _CONTROL.search(value):
        raise ValueError("must be a single line without control characters")
    return value.strip() or None


class Address(StrictBody):
    """A postal address, after Stripe's: `line1` and `country` are required, the rest optional."""

    line1: str = Field(max_length=200, description="Street address, PO box or company name.")
    line2: str | None = Field(
        default=None, max_length=200, description="Apartment, suite, unit or building."
    )
    city: str | None = Field(default=None, max_length=100)
    region: str | None = Field(
        default=None, max_length=100, description="State, province, county or region."
    )
    postal_code: str | None = Field(default=None, max_length=20)
    country: str = Field(
        min_length=2, max_length=2, description="ISO 3166-1 alpha-2 code.", examples=["US"]
    )

    _parts = field_validator("line2", "city", "region", "postal_code")(one_line)

    @field_validator("line1")
    @classmethod
    def _line1(cls, value: str) -> str:
        line = one_line(value)
        if line is None:
            raise ValueError("must not be blank")
        return line

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in COUNTRY_NAMES:
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
        return code


def stored_address(row: Any, prefix: str) -> Address | None:
    """The address kept in `row`'s columns `{prefix}line1` … `{prefix}country`, if any."""
    values = {part: getattr(row, prefix + part) for part in ADDRESS_PARTS}
    if values["line1"] is None:
        return None
    return Address.model_validate(values)


def store_address(row: Any, prefix: str, address: Address | None) -> None:
    """Replace the whole address (None removes it); the database refuses half an address."""
    for part in ADDRESS_PARTS:
        setattr(row, prefix + part, getattr(address, part) if address is not None else None)


def printed_lines(address: Address) -> list[str]:
    """The address as lines on an envelope or an invoice, the country spelled out."""
    city, region, postal = address.city, address.region, address.postal_code
    lines = [address.line1, address.line2]
    if address.country in _CITY_REGION_POSTAL:
        place = ", ".join(part for part in (city, region) if part)
        lines.append(" ".join(part for part in (place, postal) if part))
    else:
        lines += [" ".join(part for part in (postal, city) if part), region]
    lines.append(COUNTRY_NAMES[address.country])
    return [line for line in lines if line]
