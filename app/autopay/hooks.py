"""AutoPay's part in other domains' transactions: scheduling on issue, canceling on void,
and refusing to delete a payment method it still needs."""

from __future__ import annotations

from app.autopay.service import (
    cancel_for_voided_invoice,
    method_in_use,
    schedule_for_issued_invoice,
)
from app.invoices.service import ISSUE_HOOKS, VOID_HOOKS
from app.payment_methods.service import IN_USE_CHECKS


def install() -> None:
    """Idempotent: every app built in one process shares these lists."""
    for hooks, hook in (
        (ISSUE_HOOKS, schedule_for_issued_invoice),
        (VOID_HOOKS, cancel_for_voided_invoice),
        (IN_USE_CHECKS, method_in_use),
    ):
        if hook not in hooks:
            hooks.append(hook)  # type: ignore[arg-type]
