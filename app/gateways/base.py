"""The payment-gateway contract: value types, the error taxonomy and the `PaymentGateway` protocol.

Everything above this package talks to a gateway only through these names, so the fake, Stripe
and any plugin gateway are interchangeable. Amounts are integer minor units and currencies are
upper-case ISO 4217 codes on our side; adapters translate to whatever their API wants.

The error taxonomy is what lets callers move money safely:

* `GatewayDeclined` is a business outcome (the card/bank or the gateway said no). It is final for
  that idempotency key: replaying the key re-raises the same decline.
* `GatewayUnavailable` means the outcome is UNKNOWN (timeout, 5xx, dropped connection). The charge
  may or may not exist; reconcile by calling `charge()` again with the same idempotency key.
* `GatewayRequestError` is a technical error on our side (bad parameters, bad credentials, key
  reuse with different parameters). Retrying the same request will fail the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol, runtime_checkable

PaymentMethodType = Literal["card", "ach"]
ChargeStatus = Literal["succeeded", "pending"]

# Declines that must never be retried automatically: the issuer will not approve this credential
# again (card networks' "do not reattempt" categories, e.g. Visa category 1 and Mastercard MAC 03),
# retrying looks like card testing, or the bank account cannot be debited again (ACH returns for a
# closed, missing, invalid, frozen or restricted account, or a debit the holder did not or no
# longer authorizes: R02, R03, R04, R16, R20, R07/R10, under Stripe's names). `do_not_honor`,
# `insufficient_funds` (a card's, or ACH R01), `card_declined`, `authentication_required`,
# `try_again_later` and the like stay soft: a later attempt may succeed.
HARD_DECLINE_CODES: frozenset[str] = frozenset(
    {
        # bank accounts (ACH debits)
        "account_closed",
        "account_frozen",
        "bank_account_restricted",
        "bank_account_unusable",
        "debit_not_authorized",
        "invalid_account_number",
        "no_account",
        # cards
        "stolen_card",
        "lost_card",
        "pickup_card",
        "fraudulent",
        "expired_card",
        "incorrect_number",
        "invalid_number",
        "invalid_account",
        "restricted_card",
        "security_violation",
        "merchant_blacklist",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "stop_payment_order",
        "new_account_information_available",
        "card_not_supported",
        "currency_not_supported",
    }
)

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class AttachedMethod:
    reference: str
    type: PaymentMethodType
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None
    fingerprint: str
    funding: str | None = None  # cards: "credit", "debit", "prepaid" or "unknown" (Stripe's)


@dataclass(frozen=True, slots=True)
class Charge:
    reference: str
    amount: int
    currency: str
    status: ChargeStatus
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Refund:
    reference: str
    charge_reference: str
    amount: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: str
    type: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Everything any built-in gateway needs; the app's own config builds one of these."""

    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str = "https://api.stripe.com"
    timeout_seconds: float = 10.0
    fake_latency_seconds: float = 0.0
    fake_ledger_path: str | None = None
    fake_webhook_secret: str = "whsec_fake"  # noqa: S105 - a well-known test-only value

    def __repr__(self) -> str:
        # Settings end up in logs and tracebacks; never show the secrets.
        secret = {"stripe_api_key", "stripe_webhook_secret", "fake_webhook_secret"}
        parts = []
        for field in fields(self):
            value = getattr(self, field.name)
            parts.append(f"{field.name}={'***' if field.name in secret and value else repr(value)}")
        return f"GatewaySettings({', '.join(parts)})"


class GatewayError(Exception):
    """Base of every gateway failure. `code` is machine-readable, `message` safe to show/log."""

    def __init__(self, message: str, *, code: str = "gateway_error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class GatewayDeclined(GatewayError):
    """The payment (or refund) was refused: a business outcome, final for its idempotency key.

    `hard` is True for codes in `HARD_DECLINE_CODES`: never retry those automatically.
    `charge_reference` is the gateway's id of the failed attempt when it keeps one (Stripe does).
    `method_type` is "ach" for a returned bank debit and "card" for a card decline, when the
    gateway says (None otherwise): codes alone cannot tell, as `insufficient_funds` is both a
    card decline and an ACH return (R01), and a retry policy treats the two apart.
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        hard: bool | None = None,
        charge_reference: str | None = None,
        method_type: PaymentMethodType | None = None,
    ) -> None:
        super().__init__(message or f"Payment declined ({code}).", code=code)
        self.hard = code in HARD_DECLINE_CODES if hard is None else hard
        self.charge_reference = charge_reference
        self.method_type = method_type


class GatewayMethodRejected(GatewayError):
    """A payment method could not be attached (expired card, invalid or unknown token)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or f"Payment method rejected ({code}).", code=code)


class GatewayUnavailable(GatewayError):
    """Technical failure (timeout, 5xx, 429, connection error): the outcome is UNKNOWN."""

    def __init__(self, message: str, *, code: str = "gateway_unavailable") -> None:
        super().__init__(message, code=code)


class GatewayRateLimited(GatewayUnavailable):
    """The call was refused for its rate before anything happened: the gateway's HTTP 429, or our
    own limit (`app.gateways.ratelimit`) finding no slot in time. Retrying later is safe, even
    without an idempotency key. `retry_after` is the wait asked for, in seconds, when known."""

    def __init__(
        self, message: str, *, code: str = "rate_limited", retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class GatewayRequestError(GatewayError):
    """The gateway rejected the request itself (our bug or configuration); do not retry blindly.

    Also raised when an idempotency key is reused with different parameters.
    """

    def __init__(
        self, message: str, *, code: str = "invalid_request", status: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.status = status


class GatewayNotFound(GatewayRequestError):
    """The referenced object (charge, customer, ...) does not exist at the gateway."""

    def __init__(
        self, message: str, *, code: str = "resource_missing", status: int | None = 404
    ) -> None:
        super().__init__(message, code=code, status=status)


class GatewayConfigurationError(GatewayError, ValueError):
    """The gateway cannot be built from the given settings (e.g. a missing API key)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="configuration_error")


class WebhookVerificationError(GatewayError):
    """A webhook's signature, timestamp or body is not acceptable; answer 400 and ignore it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="webhook_verification_failed")


@runtime_checkable
class PaymentGateway(Protocol):
    name: str

    async def create_customer(
        self, *, name: str, email: str | None, metadata: Mapping[str, str]
    ) -> str: ...

    async def attach_method(self, *, token: str, customer_reference: str) -> AttachedMethod: ...

    async def charge(
        self,
        *,
        amount: int,
        currency: str,
        method_reference: str,
        customer_reference: str,
        idempotency_key: str,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Charge:
        """Move money. The same `idempotency_key` always yields the first call's outcome.

        Raises `GatewayDeclined` (final) or `GatewayUnavailable` (unknown: call again, same key).
        """
        ...

    async def get_charge(self, reference: str) -> Charge: ...

    async def refund(self, *, charge_reference: str, amount: int, idempotency_key: str) -> Refund:
        """Same key => same refund. `GatewayDeclined` if refused (e.g. `amount_too_large`)."""
        ...

    def verify_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent: ...

    async def aclose(self) -> None: ...


def validate_money(amount: int, currency: str | None = None) -> None:
    """Reject impossible amounts/currencies before anything reaches a gateway."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise GatewayRequestError(
            f"amount must be a positive integer in minor units, got {amount!r}",
            code="invalid_amount",
        )
    if currency is not None and not _CURRENCY_RE.match(currency):
        raise GatewayRequestError(
            f"currency must be an upper-case ISO 4217 code, got {currency!r}",
            code="invalid_currency",
        )


def require_idempotency_key(key: str) -> None:
    if not key or not key.strip() or len(key) > 255:
        raise GatewayRequestError(
            "idempotency_key must be a non-empty string of at most 255 characters",
            code="invalid_idempotency_key",
        )


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for plain dicts and Starlette's Headers."""
    direct = headers.get(name)
    if direct is not None:
        return direct
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def parse_webhook_event(payload: bytes) -> WebhookEvent:
    """Parse an already-authenticated `{"id", "type", "data"}` JSON event."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookVerificationError("webhook payload is not valid JSON") from exc
    if not isinstance(body, dict):
        raise WebhookVerificationError("webhook payload must be a JSON object")
    event_id, event_type, data = body.get("id"), body.get("type"), body.get("data")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise WebhookVerificationError("webhook event needs string 'id' and 'type'")
    if not isinstance(data, dict):
        raise WebhookVerificationError("webhook event needs an object 'data'")
    return WebhookEvent(id=event_id, type=event_type, data=data)
