"""Stripe adapter: the `PaymentGateway` contract over Stripe's REST API (httpx, form-encoded).

Charges are PaymentIntents confirmed server-side and off-session with the caller's idempotency key
as Stripe's `Idempotency-Key`, so replaying a key returns Stripe's stored result (success or
decline) and never charges twice. The key is also written to the intent's metadata so that
`get_charge` can report it.

Error mapping (see `_map_error`): card errors are `GatewayDeclined` (or `GatewayMethodRejected`
while attaching); 5xx, 429, timeouts and connection failures are `GatewayUnavailable` (outcome
unknown); any other 4xx, including idempotency errors, is `GatewayRequestError` (404:
`GatewayNotFound`). The API key never appears in exceptions, and request bodies are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import quote

import httpx

from app.gateways.base import (
    AttachedMethod,
    Charge,
    ChargeStatus,
    GatewayConfigurationError,
    GatewayDeclined,
    GatewayError,
    GatewayMethodRejected,
    GatewayNotFound,
    GatewayRequestError,
    GatewaySettings,
    GatewayUnavailable,
    Refund,
    WebhookEvent,
    WebhookVerificationError,
    header_value,
    parse_webhook_event,
    require_idempotency_key,
    validate_money,
)

STRIPE_API_VERSION = "2024-06-20"  # pinned so response shapes cannot change under us
STRIPE_SIGNATURE_HEADER = "Stripe-Signature"
WEBHOOK_TOLERANCE_SECONDS = 300
IDEMPOTENCY_METADATA_KEY = "billing_portal_idempotency_key"

# Stripe has no "tok_" bank token in test mode; this alias lets the fake's `tok_ach` work against
# Stripe test mode too. Real ids are random, so the alias cannot shadow a live token.
BANK_TOKEN_ALIASES: Mapping[str, str] = {"tok_ach": "btok_us_verified"}

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


def sign_stripe_webhook(payload: bytes, secret: str, timestamp: int) -> str:
    """A `Stripe-Signature` header value, as Stripe computes it (for tests and local tools)."""
    signed = f"{timestamp}.".encode() + payload
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


class StripeGateway:
    """`PaymentGateway` over Stripe. `transport` lets tests plug in `httpx.MockTransport`."""

    name: str = "stripe"

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        webhook_tolerance_seconds: int = WEBHOOK_TOLERANCE_SECONDS,
    ) -> None:
        if not settings.stripe_api_key:
            raise GatewayConfigurationError("the stripe gateway needs stripe_api_key")
        self._api_key = settings.stripe_api_key
        self._webhook_secret = settings.stripe_webhook_secret
        self._clock = clock
        self._tolerance = webhook_tolerance_seconds
        self._client = httpx.AsyncClient(
            base_url=settings.stripe_api_base.rstrip("/"),
            transport=transport,
            timeout=settings.timeout_seconds,
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Stripe-Version": STRIPE_API_VERSION,
                "User-Agent": "billing-portal",
            },
        )

    async def create_customer(
        self, *, name: str, email: str | None, metadata: Mapping[str, str]
    ) -> str:
        data = {"name": name, **_metadata(metadata)}
        if email:
            data["email"] = email
        # No Idempotency-Key: we never retry this call, a duplicate customer after an ambiguous
        # failure moves no money, and a key derived from name/email would wrongly merge distinct
        # customers who share them.
        body = await self._call("POST", "/v1/customers", "customer", data=data)
        return _str(body, "id")

    async def attach_method(self, *, token: str, customer_reference: str) -> AttachedMethod:
        if not _TOKEN_RE.match(token):
            raise GatewayMethodRejected("invalid_token", "The payment token is malformed.")
        customer = quote(customer_reference, safe="")
        # Real tokens are single-use: after a lost response, a retry would fail with
        # token_already_used. A key derived from (customer, token, step) makes the retry replay
        # the first result instead, and is stable for Stripe's 24 h idempotency window.
        if token.startswith("pm_"):
            pm = await self._call(
                "POST",
                f"/v1/payment_methods/{token}/attach",
                "attach",
                data={"customer": customer_reference},
                idempotency_key=_derived_key("attach", customer_reference, token),
            )
            return _method_from_payment_method(pm)
        bank_token = BANK_TOKEN_ALIASES.get(token, token)
        if bank_token.startswith("btok_"):
            # Legacy bank-account tokens become a customer BankAccount (ba_...), which Stripe
            # accepts wherever a PaymentMethod id is expected.
            account = await self._call(
                "POST",
                f"/v1/customers/{customer}/sources",
                "attach",
                data={"source": bank_token},
                idempotency_key=_derived_key("source", customer_reference, token),
            )
            return _method_from_bank_account(account)
        created = await self._call(
            "POST",
            "/v1/payment_methods",
            "attach",
            data={"type": "card", "card[token]": token},
            idempotency_key=_derived_key("create", customer_reference, token),
        )
        pm_id = quote(_str(created, "id"), safe="")
        pm = await self._call(
            "POST",
            f"/v1/payment_methods/{pm_id}/attach",
            "attach",
            data={"customer": customer_reference},
            idempotency_key=_derived_key("attach", customer_reference, token),
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
        data = {
            "amount": str(amount),
            "currency": currency.lower(),
            "customer": customer_reference,
            "payment_method": method_reference,
            "confirm": "true",
            "off_session": "true",
            # Server-side confirmation must not depend on a redirect we could not follow.
            "automatic_payment_methods[enabled]": "true",
            "automatic_payment_methods[allow_redirects]": "never",
            **_metadata({**(metadata or {}), IDEMPOTENCY_METADATA_KEY: idempotency_key}),
        }
        if description:
            data["description"] = description
        body = await self._call(
            "POST", "/v1/payment_intents", "charge", data=data, idempotency_key=idempotency_key
        )
        return _charge_from_intent(body, idempotency_key)

    async def get_charge(self, reference: str) -> Charge:
        if not reference:
            raise GatewayNotFound("No such charge: ''")
        path = f"/v1/payment_intents/{quote(reference, safe='')}"
        return _charge_from_intent(await self._call("GET", path, "get_charge"), None)

    async def refund(self, *, charge_reference: str, amount: int, idempotency_key: str) -> Refund:
        require_idempotency_key(idempotency_key)
        validate_money(amount)
        if not charge_reference:
            raise GatewayNotFound("No such charge: ''")
        data = {
            "payment_intent": charge_reference,
            "amount": str(amount),
            **_metadata({IDEMPOTENCY_METADATA_KEY: idempotency_key}),
        }
        body = await self._call(
            "POST", "/v1/refunds", "refund", data=data, idempotency_key=idempotency_key
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
        timestamp: int | None = None
        signatures: list[str] = []
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            if key == "t" and value.isascii() and value.isdigit():
                timestamp = int(value)
            elif key == "v1":
                signatures.append(value)
        if timestamp is None or not signatures:
            raise WebhookVerificationError("Stripe-Signature needs t= and at least one v1=")
        expected = sign_stripe_webhook(payload, self._webhook_secret, timestamp).split("v1=")[1]
        if not any(hmac.compare_digest(expected.encode(), s.encode()) for s in signatures):
            raise WebhookVerificationError("webhook signature does not match")
        # Like Stripe's own libraries, only stale events are refused (replay protection); a
        # timestamp ahead of our clock is Stripe's and only means clock skew.
        if timestamp < self._clock() - self._tolerance:
            raise WebhookVerificationError("webhook timestamp is outside the tolerance")
        return parse_webhook_event(payload)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        context: _Context,
        *,
        data: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        try:
            response = await self._client.request(method, path, data=data, headers=headers)
        except httpx.TimeoutException as exc:
            raise GatewayUnavailable(f"Stripe {method} {path} timed out", code="timeout") from exc
        except httpx.RequestError as exc:  # transport failures, undecodable bodies, ...
            raise GatewayUnavailable(
                f"Stripe {method} {path} failed: {type(exc).__name__}", code="connection_error"
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success:
            if not isinstance(body, dict):
                # A 2xx we cannot read may still have moved money: report the outcome as unknown.
                raise GatewayUnavailable(f"Stripe {method} {path}: unreadable response")
            return body
        error = body.get("error") if isinstance(body, dict) else None
        raise self._map_error(
            response.status_code,
            error if isinstance(error, dict) else {},
            context,
            response.headers.get("Request-Id"),
        )

    def _map_error(
        self, status: int, error: Mapping[str, Any], context: _Context, request_id: str | None
    ) -> GatewayError:
        def text(key: str) -> str | None:
            value = error.get(key)
            return value if isinstance(value, str) and value else None

        kind, code, param = text("type"), text("code"), text("param")
        # Stripe masks keys in its messages; redact anyway in case a message ever echoes one.
        safe = (text("message") or f"Stripe answered HTTP {status}").replace(
            self._api_key, "[redacted]"
        )[:500]
        message = f"{safe} (request {request_id})" if request_id else safe
        if status >= 500 or status == 429:
            default = "rate_limited" if status == 429 else "api_error"
            return GatewayUnavailable(message, code=code or default)
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


def _metadata(values: Mapping[str, str]) -> dict[str, str]:
    return {f"metadata[{key}]": value for key, value in values.items()}


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
        error = intent.get("last_payment_error")
        error = error if isinstance(error, dict) else {}
        fallback = "card_declined" if status == "requires_payment_method" else "canceled"
        code = error.get("decline_code") or error.get("code") or fallback
        raise GatewayDeclined(str(code), error.get("message"), charge_reference=reference)
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
