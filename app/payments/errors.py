"""Payment errors: declines are business outcomes (402), outages technical (503)."""

from __future__ import annotations

import uuid

from app.core.errors import AppError, Conflict, NotFound
from app.core.idempotency import RetryLater
from app.core.money import AmountTooLarge as AmountTooLarge  # one problem type for both uses
from app.payment_methods.errors import GatewayUnavailableError


class PaymentNotFound(NotFound):
    default_detail = "No such payment."


class PaymentDeclined(AppError):
    status = 402
    type_slug = "payment-declined"
    title = "Payment declined"

    def __init__(self, *, payment_id: uuid.UUID, code: str, message: str) -> None:
        super().__init__(
            f"The payment was declined: {message}",
            extra={"payment_id": str(payment_id), "decline_code": code},
        )


class PaymentPending(GatewayUnavailableError):
    """The gateway did not answer: the payment is kept `pending` and will be reconciled."""

    def __init__(self, payment_id: uuid.UUID) -> None:
        super().__init__(
            "The payment gateway did not answer. The payment is pending and will be settled "
            "automatically; it will never be charged twice. Check it with GET "
            f"/api/v1/payments/{payment_id}.",
            payment_id=str(payment_id),
            payment_status="pending",
        )


class InvoiceNotPayable(Conflict):
    type_slug = "invoice-not-payable"
    title = "Invoice not payable"

    def __init__(self, status: str) -> None:
        super().__init__(f"The invoice is {status}; there is nothing to pay.")
        self.invoice_status = status


class NothingToPay(Conflict):
    type_slug = "nothing-to-pay"
    title = "Nothing to pay"
    default_detail = "The client has no open invoice to pay."


class PaymentInProgress(RetryLater, Conflict):
    type_slug = "payment-in-progress"
    title = "Payment in progress"
    default_detail = (
        "Another payment on this invoice is being processed; retry once it has settled."
    )


class RefundNotAllowed(Conflict):
    type_slug = "refund-not-allowed"
    title = "Refund not allowed"


class RefundDeclined(AppError):
    status = 402
    type_slug = "refund-declined"
    title = "Refund declined"


class RefundPending(GatewayUnavailableError):
    def __init__(self, refund_id: uuid.UUID) -> None:
        super().__init__(
            "The payment gateway did not answer. The refund is pending and will be settled "
            "automatically; it will never be refunded twice.",
            refund_id=str(refund_id),
            refund_status="pending",
        )
