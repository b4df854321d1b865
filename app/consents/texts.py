"""The texts every tenant starts with (version 1), until its staff set their own. They name no
one, so that a version always means the same words (its SHA-256 is what a record keeps)."""

from __future__ import annotations

DEFAULT_TEXTS = {
    "ach_debit": (
        "I authorize my service provider to debit the bank account I have entered for my "
        "company's invoices, on the dates I choose or that AutoPay sets, and, if a debit is "
        "returned for insufficient funds, to present it again as the ACH rules allow. I may "
        "revoke this authorization by removing the account from the portal."
    ),
    "autopay": (
        "I authorize my service provider to charge the payment methods I have chosen for the "
        "invoices my AutoPay rules cover, on the dates those rules set, until I turn AutoPay off."
    ),
}
DEFAULT_VERSION = 1
