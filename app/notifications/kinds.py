"""The kinds of email, who gets them, and which a person may turn off."""

from __future__ import annotations

from collections.abc import Mapping

# Every kind, with when it is sent.
KINDS: Mapping[str, str] = {
    "invitation": "A new contact is invited: a sign-in link.",
    "password_reset": "A person asked to reset their password: a single-use link.",
    "invoice_issued": "An invoice was issued to the client.",
    "payment_receipt": "A payment succeeded.",
    "payment_failed": "A payment was declined.",
    "autopay_upcoming": "A scheduled charge is N days away (BILLING_AUTOPAY_NOTICE_DAYS).",
    "scheduled_payment_changed": "Someone else changed or canceled a scheduled payment.",
    "card_expiring": "A saved card expires within 30 days.",
    "ticket_updated": "Staff replied on a ticket.",
    "autopay_summary": "Staff: what the due-payment run did for the MSP's clients.",
}

# Account mail and a declined payment (money the client owes) cannot be turned off.
REQUIRED_KINDS = frozenset({"invitation", "password_reset", "payment_failed"})
OPTIONAL_KINDS = tuple(kind for kind in KINDS if kind not in REQUIRED_KINDS)

# Kinds whose link is a credential: the stored body is cleared once the message is sent.
SECRET_LINK_KINDS = frozenset({"invitation", "password_reset"})

STAFF_KINDS = frozenset({"autopay_summary"})
