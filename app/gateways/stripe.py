"""Stripe adapter: the `PaymentGateway` contract over the official `stripe` SDK's async client.

`StripeClient` runs on the SDK's `HTTPXClient` (httpx.AsyncClient underneath) and its `*_async`
methods, with `stripe_api_base` as the SDK's "api" base address (the tests point it at a Stripe
simulator on loopback). The SDK's own network retries are off: a retry policy lives above the
gateway (the money path replays the same key; `app.gateways.ratelimit` backs off after a 429),
and one place owning retries is what keeps a charge's attempts countable.

Charges are PaymentIntents confirmed server-side and off-session with the caller's idempotency key
as Stripe's `Idempotency-Key`, so replaying a key returns Stripe's stored result (success or
decline) and never charges twice. The key is also written to the intent's metadata so that
`get_charge` can report it.

Error mapping (see `_map_error`): card errors are `GatewayDeclined` (or `GatewayMethodRejected`
while attaching); 5xx, 429, timeouts, connection failures and unreadable answers are
`GatewayUnavailable` (outcome unknown); any other 4xx, including idempotency errors, is
`GatewayRequestError` (404: `GatewayNotFound`). The API key never appears in exceptions, and
request bodies are never logged (the SDK logs form bodies at DEBUG; see `_quiet_sdk_logs`).

Webhooks are verified by the SDK's `WebhookSignature.verify_header`; only the age check is ours,
because the SDK compares with `time.time()` and the adapter takes an injectable clock.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
from stripe import (
    APIConnectionError,
    HTTPXClient,
    SignatureVerificationError,
    StripeClient,
    StripeError,
    StripeObject,
    WebhookSignature,
)
from stripe import api_version as sdk_api_version
from stripe.params import (
    CustomerCreateParams,
    PaymentIntentCreateParams,
    RefundCreateParams,
)

from app.gateways.base import (
    AttachedMethod,
    Charge,
    ChargeStatus,
    GatewayConfigurationError,
    GatewayDeclined,
    GatewayError,
    GatewayMethodRejected,
    GatewayNotFound,
    GatewayRateLimited,
    GatewayRequestError,
    GatewaySettings,
    GatewayUnavailable,
    PaymentMethodType,
    Refund,
    WebhookEvent,
    WebhookVerificationError,
    header_value,
    parse_webhook_event,
    require_idempotency_key,
    validate_money,
)

# The API version the pinned SDK (pyproject.toml) is generated for and sends on every request:
# pinning the SDK pins the response shapes.
STRIPE_API_VERSION: str = sdk_api_version
STRIPE_SIGNATURE_HEADER = "Stripe-Signature"
WEBHOOK_TOLERANCE_SECONDS = 300
IDEMPOTENCY_METADATA_KEY = "billing_portal_idempotency_key"

# The fake gateway's test tokens whose Stripe test-mode name differs (Stripe has no "tok_" bank
# tokens), so the same tokens work against Stripe test mode. Real ids are random, so an alias
# cannot shadow a live token.
TEST_TOKEN_ALIASES: Mapping[str, str] = {
    "tok_ach": "btok_us_verified",
    "tok_achInsufficientFunds": "btok_us_verified_insufficientFunds",
    "tok_achAccountClosed": "btok_us_verified_accountClosed",
    "tok_visaDebit": "tok_visa_debit",
}
# What Stripe calls the types of the payment methods we know.
_METHOD_TYPES: Mapping[str, PaymentMethodType] = {
    "card": "card",
    "us_bank_account": "ach",
    "bank_account": "ach",
}

# invalid_request_error codes that mean "the refund is refused", a business outcome.
REFUND_REFUSAL_CODES = frozenset(
    {
        "amount_too_large",
        "charge_already_refunded",
        "charge_disputed",
        "charge_not_refundable",
        "charge_exceeds_source_limit",
        "balance_insufficient",
    }
)
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_]{3,255}$")
_INVALID_TOKEN_CODES = frozenset({"resource_missing", "token_already_used", "token_in_use"})

_Context = Literal["customer", "attach", "charge", "get_charge", "refund"]


def _quiet_sdk_logs() -> None:
    """The SDK logs every request at INFO and its form body (names, emails, tokens) at DEBUG.
    Unless someone configured the "stripe" logger on purpose, keep it at WARNING so a DEBUG root
    logger cannot put request bodies in the logs."""
    sdk_log = logging.getLogger("stripe")
    if sdk_log.level == logging.NOTSET:
        sdk_log.setLevel(logging.WARNING)


_quiet_sdk_logs()


def sign_stripe_webhook(payload: bytes, secret: str, timestamp: int) -> str:
    """A `Stripe-Signature` header value, as Stripe computes it (for tests and local tools)."""
    return str(WebhookSignature.generate_signature_header(payload.decode(), secret, timestamp))


class StripeGateway:
    """`PaymentGateway` over Stripe through the official SDK's async client."""

    name: str = "stripe"

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        clock: Callable[[], float] = time.time,
        webhook_tolerance_seconds: int = WEBHOOK_TOLERANCE_SECONDS,
    ) -> None:
        if not settings.stripe_api_key:
            raise GatewayConfigurationError("the stripe gateway needs stripe_api_key")
        self._api_key = settings.stripe_api_key
        self._webhook_secret = settings.stripe_webhook_secret
        self._clock = clock
        self._tolerance = webhook_tolerance_seconds
        self._http = HTTPXClient(timeout=settings.timeout_seconds)
        self._client = StripeClient(
            settings.stripe_api_key,
            base_addresses={"api": settings.stripe_api_base.rstrip("/")},
            max_network_retries=0,
            http_client=self._http,
        )

    async def create_customer(
        self, *, name: str, email: str | None, metadata: Mapping[str, str]
    ) -> str:
        params: CustomerCreateParams = {"name": name}
        if metadata:
            params["metadata"] = dict(metadata)
        if email:
            params["email"] = email
        # No key of ours: we never retry this call, a duplicate customer after an ambiguous
        # failure moves no money, and a key derived from name/email would wrongly merge distinct
        # customers who share them. (The SDK still sends a random Idempotency-Key on every POST.)
        body = await self._call("customer", self._client.v1.customers.create_async(params))
        return _str(body, "id")

    async def attach_method(self, *, token: str, customer_reference: str) -> AttachedMethod:
        if not _TOKEN_RE.match(token):
            raise GatewayMethodRejected("invalid_token", "The payment token is malformed.")
        methods = self._client.v1.payment_methods
        # Real tokens are single-use: after a lost response, a retry would fail with
        # token_already_used. A key derived from (customer, token, step) makes the retry replay
        # the first result instead, and is stable for Stripe's 24 h idempotency window.
        if token.startswith("pm_"):
            pm = await self._call(
                "attach",
                methods.attach_async(
                    token,
                    {"customer": customer_reference},
                    {"idempotency_key": _derived_key("attach", customer_reference, token)},
                ),
            )
            return _method_from_payment_method(pm)
        stripe_token = TEST_TOKEN_ALIASES.get(token, token)
        if stripe_token.startswith("btok_"):
            # Legacy bank-account tokens become a customer BankAccount (ba_...), which Stripe
            # accepts wherever a PaymentMethod id is expected.
            account = await self._call(
                "attach",
                self._client.v1.customers.payment_sources.create_async(
                    customer_reference,
                    {"source": stripe_token},
                    {"idempotency_key": _derived_key("source", customer_reference, token)},
                ),
            )
            return _method_from_bank_account(account)
        created = await self._call(
            "attach",
            methods.create_async(
                {"type": "card", "card": {"token": stripe_token}},
                {"idempotency_key": _derived_key("create", customer_reference, token)},
            ),
        )
        pm = await self._call(
            "attach",
            methods.attach_async(
                _str(created, "id"),
                {"customer": customer_reference},
                {"idempotency_key": _derived_key("attach", customer_reference, token)},
            ),
        )
        return _method_from_payment_method(pm)

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
        require_idempotency_key(idempotency_key)
        validate_money(amount, currency)
        if not customer_reference or not method_reference:
            raise GatewayRequestError(
                "customer_reference and method_reference are required", code="parameter_missing"
            )
        params: PaymentIntentCreateParams = {
            "amount": amount,
            "currency": currency.lower(),
            "customer": customer_reference,
            "payment_method": method_reference,
            "confirm": True,
            "off_session": True,
            # Server-side confirmation must not depend on a redirect we could not follow.
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "metadata": {**(metadata or {}), IDEMPOTENCY_METADATA_KEY: idempotency_key},
        }
        if description:
            params["description"] = description
        body = await self._call(
            "charge",
            self._client.v1.payment_intents.create_async(
                params, {"idempotency_key": idempotency_key}
            ),
        )
        return _charge_from_intent(body, idempotency_key)

    async def get_charge(self, reference: str) -> Charge:
        if not reference:
            raise GatewayNotFound("No such charge: ''")
        intents = self._client.v1.payment_intents
        return _charge_from_intent(
            await self._call("get_charge", intents.retrieve_async(reference)), None
        )

    async def refund(self, *, charge_reference: str, amount: int, idempotency_key: str) -> Refund:
        require_idempotency_key(idempotency_key)
        validate_money(amount)
        if not charge_reference:
            raise GatewayNotFound("No such charge: ''")
        params: RefundCreateParams = {
            "payment_intent": charge_reference,
            "amount": amount,
            "metadata": {IDEMPOTENCY_METADATA_KEY: idempotency_key},
        }
        body = await self._call(
            "refund",
            self._client.v1.refunds.create_async(params, {"idempotency_key": idempotency_key}),
        )
        if body.get("status") in ("failed", "canceled"):
            reason = body.get("failure_reason")
            raise GatewayDeclined(reason if isinstance(reason, str) else "refund_failed")
        intent = body.get("payment_intent")
        return Refund(
            reference=_str(body, "id"),
            charge_reference=intent if isinstance(intent, str) else charge_reference,
            amount=_int(body, "amount"),
            idempotency_key=idempotency_key,
        )

    def verify_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        if not self._webhook_secret:
            raise WebhookVerificationError("stripe_webhook_secret is not configured")
        header = header_value(headers, STRIPE_SIGNATURE_HEADER)
        if not header:
            raise WebhookVerificationError(f"missing {STRIPE_SIGNATURE_HEADER} header")
        try:
            # tolerance=None: the SDK would measure the age with time.time(); it is checked
            # below against the injected clock instead.
            WebhookSignature.verify_header(payload, header, self._webhook_secret, tolerance=None)
        except SignatureVerificationError as exc:
            raise WebhookVerificationError(f"webhook signature: {exc.user_message}") from exc
        except UnicodeDecodeError as exc:
            raise WebhookVerificationError("webhook payload is not UTF-8") from exc
        # Like Stripe's own libraries, only stale events are refused (replay protection); a
        # timestamp ahead of our clock is Stripe's and only means clock skew.
        if _signed_at(header) < self._clock() - self._tolerance:
            raise WebhookVerificationError("webhook timestamp is outside the tolerance")
        return parse_webhook_event(payload)

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK

    async def _call(self, context: _Context, request: Awaitable[StripeObject]) -> dict[str, Any]:
        try:
            result = await request
        except StripeError as exc:
            # Not chained: the SDK's exception carries Stripe's raw message and body, which a
            # logged traceback would print; the mapped error has the safe parts.
            raise self._map_error(exc, context) from None
        return result.to_dict()

    def _map_error(self, exc: StripeError, context: _Context) -> GatewayError:
        if isinstance(exc, APIConnectionError):
            # The SDK wraps every transport failure; its cause tells a timeout from the rest.
            if isinstance(exc.__cause__, httpx.TimeoutException):
                return GatewayUnavailable(f"Stripe {context} timed out", code="timeout")
            cause = type(exc.__cause__ or exc).__name__
            return GatewayUnavailable(f"Stripe {context} failed: {cause}", code="connection_error")
        status = exc.http_status
        if status is None or status < 400:
            # An answer we cannot read (a 2xx included) may still have moved money.
            return GatewayUnavailable(f"Stripe {context}: unreadable response")
        body = exc.json_body
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}

        def text(key: str) -> str | None:
            value = error.get(key)
            return value if isinstance(value, str) and value else None

        kind, code, param = text("type"), text("code"), text("param")
        # Stripe masks keys in its messages; redact anyway in case a message ever echoes one.
        safe = (text("message") or f"Stripe answered HTTP {status}").replace(
            self._api_key, "[redacted]"
        )[:500]
        message = f"{safe} (request {exc.request_id})" if exc.request_id else safe
        if status == 429:  # refused before anything happened (rate or lock contention)
            retry_after = _seconds(exc.headers.get("Retry-After") if exc.headers else None)
            return GatewayRateLimited(message, code=code or "rate_limited", retry_after=retry_after)
        if status >= 500:
            return GatewayUnavailable(message, code=code or "api_error")
        if kind == "idempotency_error" or status == 409:
            return GatewayRequestError(message, code="idempotency_error", status=status)
        if kind == "card_error":
            decline = text("decline_code") or code or "card_declined"
            if context == "attach":
                return GatewayMethodRejected(decline, safe)
            intent = error.get("payment_intent")
            intent_id = intent.get("id") if isinstance(intent, dict) else None
            return GatewayDeclined(
                decline,
                safe,
                charge_reference=intent_id if isinstance(intent_id, str) else None,
                method_type=_declined_method_type(error),
            )
        if context == "attach" and code in _INVALID_TOKEN_CODES and param != "customer":
            return GatewayMethodRejected(
                "invalid_token" if code == "resource_missing" else code, safe
            )
        if context == "refund" and code in REFUND_REFUSAL_CODES:
            return GatewayDeclined(code, safe)
        if status == 404:
            return GatewayNotFound(message, code=code or "resource_missing", status=status)
        return GatewayRequestError(message, code=code or kind or "invalid_request", status=status)


def _seconds(retry_after: str | None) -> float | None:
    """A Retry-After header's delay: delta-seconds or an HTTP date; None when absent or odd."""
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _signed_at(header: str) -> int:
    """The `t=` of a header the SDK has already parsed and verified (so it is there)."""
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key == "t":
            return int(value)
    raise WebhookVerificationError("Stripe-Signature has no timestamp")


def _derived_key(step: str, customer: str, token: str) -> str:
    return f"{step}-" + hashlib.sha256(f"{customer}\n{token}".encode()).hexdigest()[:40]


def _str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise GatewayUnavailable(f"Stripe response lacks {key!r}", code="unexpected_response")
    return value


def _int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise GatewayUnavailable(f"Stripe response lacks {key!r}", code="unexpected_response")
    return value


def _child(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise GatewayUnavailable(f"Stripe response lacks {key!r}", code="unexpected_response")
    return value


def _method_from_payment_method(pm: Mapping[str, Any]) -> AttachedMethod:
    reference, kind = _str(pm, "id"), pm.get("type")
    if kind == "card":
        card = _child(pm, "card")
        return AttachedMethod(
            reference=reference,
            type="card",
            brand=_str(card, "brand").lower(),
            last4=_str(card, "last4"),
            exp_month=_int(card, "exp_month"),
            exp_year=_int(card, "exp_year"),
            # Without a fingerprint, fall back to something unique rather than a shared "".
            fingerprint=card.get("fingerprint") or reference,
            funding=card.get("funding") if isinstance(card.get("funding"), str) else None,
        )
    if kind == "us_bank_account":
        account = _child(pm, "us_bank_account")
        return AttachedMethod(
            reference=reference,
            type="ach",
            brand="bank",
            last4=_str(account, "last4"),
            exp_month=None,
            exp_year=None,
            fingerprint=account.get("fingerprint") or reference,
        )
    raise GatewayMethodRejected("unsupported_method", f"Payment method type {kind!r} unsupported.")


def _method_from_bank_account(account: Mapping[str, Any]) -> AttachedMethod:
    reference = _str(account, "id")
    return AttachedMethod(
        reference=reference,
        type="ach",
        brand="bank",
        last4=_str(account, "last4"),
        exp_month=None,
        exp_year=None,
        fingerprint=account.get("fingerprint") or reference,
    )


def _charge_from_intent(intent: Mapping[str, Any], idempotency_key: str | None) -> Charge:
    reference, status = _str(intent, "id"), intent.get("status")
    charge_status: ChargeStatus
    if status == "succeeded":
        charge_status = "succeeded"
    elif status in ("processing", "requires_capture"):
        charge_status = "pending"
    elif status == "requires_action":
        raise GatewayDeclined(
            "authentication_required",
            "The payment needs the customer to authenticate.",
            charge_reference=reference,
        )
    elif status in ("requires_payment_method", "canceled"):
        # A card decline, or a bank debit's return (ACH: `code` is the failure code).
        error = intent.get("last_payment_error")
        error = error if isinstance(error, dict) else {}
        fallback = "card_declined" if status == "requires_payment_method" else "canceled"
        code = error.get("decline_code") or error.get("code") or fallback
        raise GatewayDeclined(
            str(code),
            error.get("message"),
            charge_reference=reference,
            method_type=_declined_method_type(error),
        )
    else:
        raise GatewayRequestError(
            f"PaymentIntent {reference} is in unexpected status {status!r}",
            code="unexpected_status",
        )
    if idempotency_key is None:
        metadata = intent.get("metadata")
        stored = metadata.get(IDEMPOTENCY_METADATA_KEY) if isinstance(metadata, dict) else None
        idempotency_key = stored if isinstance(stored, str) else ""
    return Charge(
        reference=reference,
        amount=_int(intent, "amount"),
        currency=_str(intent, "currency").upper(),
        status=charge_status,
        idempotency_key=idempotency_key,
    )


def _declined_method_type(error: Mapping[str, Any]) -> PaymentMethodType | None:
    """Card or bank account, from the error's PaymentMethod (or legacy source) when present."""
    method, source = error.get("payment_method"), error.get("source")
    kind = None
    if isinstance(method, dict):
        kind = method.get("type")
    elif isinstance(source, dict):
        kind = source.get("object")
    return _METHOD_TYPES.get(kind) if isinstance(kind, str) else None
