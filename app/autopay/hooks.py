"""AutoPay's part in other domains' transactions: scheduling on issue, canceling on void,
and refusing to delete a payment method it still needs."""

from __future__ import annotations

from app.autopay.service import (
    cancel_for_voided_invoice,
    method_in_use,
    schedule_for_issued_invoice,
)
from app.core.hooks import Hooks


def register(hooks: Hooks) -> None:
    hooks.invoice_issued.append(schedule_for_issued_invoice)
    hooks.invoice_voided.append(cancel_for_voided_invoice)
    hooks.payment_method_in_use.append(method_in_use)
