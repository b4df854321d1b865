"""The fake gateway's test tokens, after Stripe's test-mode names: what each one is and does.

The reference `attach_method` returns (`pm_fake_<token>_<12 hex>`) encodes the token, so any
process can decide a charge's outcome from the reference alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from app.gateways.base import PaymentMethodType

FAKE_EXP_MONTH, FAKE_EXP_YEAR = 12, 2034


@dataclass(frozen=True, slots=True)
class FakeToken:
    type: PaymentMethodType
    brand: str
    last4: str
    decline_code: str | None = None  # every charge is declined with this code
    attach_error: str | None = None  # attaching is refused with this code


FAKE_TOKENS: Mapping[str, FakeToken] = MappingProxyType(
    {
        "tok_visa": FakeToken("card", "visa", "4242"),
        "tok_mastercard": FakeToken("card", "mastercard", "4444"),
        "tok_amex": FakeToken("card", "amex", "0005"),
        "tok_chargeDeclined": FakeToken("card", "visa", "0002", decline_code="card_declined"),
        "tok_insufficientFunds": FakeToken(
            "card", "visa", "9995", decline_code="insufficient_funds"
        ),
        "tok_expiredCard": FakeToken("card", "visa", "0069", attach_error="expired_card"),
        "tok_chargeDeclinedStolenCard": FakeToken(
            "card", "visa", "9979", decline_code="stolen_card"
        ),
        "tok_chargeDeclinedLostCard": FakeToken("card", "visa", "9987", decline_code="lost_card"),
        "tok_ach": FakeToken("ach", "bank", "6789"),
    }
)

# The customer-facing texts Stripe uses for these codes.
DECLINE_MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        "card_declined": "Your card was declined.",
        "insufficient_funds": "Your card has insufficient funds.",
        "expired_card": "Your card has expired.",
        "stolen_card": "Your card was declined.",
        "lost_card": "Your card was declined.",
    }
)


def fingerprint_for(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]
