"""Payment-method errors."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable


class PaymentMethodNotFound(NotFound):
    default_detail = "No such payment method."


class DuplicatePaymentMethod(Conflict):
    type_slug = "duplicate-payment-method"
    default_detail = "This card or account is already on file for this client."


class PaymentMethodInUse(Conflict):
    type_slug = "payment-method-in-use"
    default_detail = (
        "This payment method is used by AutoPay or a scheduled payment: "
        "switch those to another method first."
    )


class PaymentMethodRejected(Unprocessable):
    type_slug = "payment-method-rejected"
    title = "Payment method rejected"

    def __init__(self, detail: str, *, code: str) -> None:
        super().__init__(detail, loc=("body", "token"))
        self.extra["code"] = code


class GatewayUnavailableError(ServiceUnavailable):
    type_slug = "gateway-unavailable"
    title = "Payment gateway unavailable"
    default_detail = "The payment gateway did not answer; retry shortly."

    def __init__(self, detail: str | None = None, **extra: object) -> None:
        super().__init__(detail, headers={"Retry-After": "5"}, extra=extra)
