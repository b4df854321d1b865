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
    decline_code: str | None = None  # every charge (ach: every debit, returned) is declined so
    attach_error: str | None = None  # attaching is refused with this code
    debit: bool = False  # cards: a debit card rather than a credit card

    @property
    def funding(self) -> str | None:
        if self.type != "card":
            return None
        return "debit" if self.debit else "credit"


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
        "tok_chargeDeclinedFraudulent": FakeToken(
            "card", "visa", "0019", decline_code="fraudulent"
        ),
        "tok_visaDebit": FakeToken("card", "visa", "5556", debit=True),
        "tok_ach": FakeToken("ach", "bank", "6789"),
        "tok_achInsufficientFunds": FakeToken(
            "ach", "bank", "2227", decline_code="insufficient_funds"
        ),
        "tok_achAccountClosed": FakeToken("ach", "bank", "1113", decline_code="account_closed"),
    }
)

# The customer-facing texts Stripe uses for these codes (cards; then bank debits, by method type).
DECLINE_MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        "card_declined": "Your card was declined.",
        "insufficient_funds": "Your card has insufficient funds.",
        "expired_card": "Your card has expired.",
        "stolen_card": "Your card was declined.",
        "lost_card": "Your card was declined.",
        "fraudulent": "Your card was declined.",
    }
)
ACH_RETURN_MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        "insufficient_funds": (
            "The customer's account has insufficient funds to cover this payment."
        ),
        "account_closed": "The customer's bank account has been closed.",
    }
)


def decline_message(token: FakeToken) -> str | None:
    if token.decline_code is None:
        return None
    messages = ACH_RETURN_MESSAGES if token.type == "ach" else DECLINE_MESSAGES
    return messages.get(token.decline_code)


def fingerprint_for(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]
