"""A small stateful Stripe API simulator, served through `httpx.MockTransport`.

It answers the endpoints `StripeGateway` uses with Stripe's documented object and error shapes,
knows the same test tokens as the fake gateway (`FAKE_TOKENS`; `btok_us_verified` is the bank
token), and implements Stripe's idempotency: a POST with a known `Idempotency-Key` replays the
stored response (`Idempotent-Replayed: true`), or fails with an `idempotency_error` if the
parameters differ. Successful and 402 results are stored; validation errors are not.

`fail_next(kind)` injects one failure into the next request: "timeout"/"connect" (nothing
happens), an HTTP status such as 500/503/429 (nothing happens), "lost_response" (processed, then
a read timeout) or "garbage" (processed, then an unreadable 200).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx

from app.gateways.fake import DECLINE_MESSAGES, FAKE_EXP_MONTH, FAKE_EXP_YEAR, FAKE_TOKENS

SIM_API_KEY = "sk_test_simulator_51Hx0000000000000000"
BANK_TOKEN = "btok_us_verified"

Json = dict[str, Any]
Result = tuple[int, Json]
Failure = Literal["timeout", "connect", "lost_response", "garbage"] | int


def error(status: int, kind: str, message: str, **fields: Any) -> Result:
    return status, {"error": {"type": kind, "message": message, **fields}}


def missing(what: str, ident: str, param: str) -> Result:
    message = f"No such {what}: '{ident}'"
    return error(404, "invalid_request_error", message, code="resource_missing", param=param)


class StripeSimulator:
    def __init__(self, api_key: str = SIM_API_KEY) -> None:
        self.api_key = api_key
        self.customers: dict[str, Json] = {}
        self.payment_methods: dict[str, Json] = {}  # pm_... and ba_... objects
        self.payment_intents: dict[str, Json] = {}
        self.refunds: dict[str, Json] = {}
        self.requests: list[httpx.Request] = []
        self.ach_status = "succeeded"  # set to "processing" to see real-world ACH behaviour
        self.next_intent_status: str | None = None  # forces the next intent's status
        self._tokens: dict[str, str] = {}  # payment method id -> test token
        self._idempotent: dict[str, tuple[str, Result]] = {}
        self._failures: list[Failure] = []
        self._ids = itertools.count(1)
        self.transport = httpx.MockTransport(self.handle)

    def fail_next(self, *kinds: Failure) -> None:
        self._failures.extend(kinds)

    @property
    def money_moving_intents(self) -> list[Json]:
        return [
            pi
            for pi in self.payment_intents.values()
            if pi["status"] in ("succeeded", "processing")
        ]

    def _id(self, prefix: str) -> str:
        return f"{prefix}_sim{next(self._ids):06d}"

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._respond(
                error(401, "authentication_error", "Invalid API Key provided: sk_test_****0000")
            )
        failure = self._failures.pop(0) if self._failures else None
        if failure == "timeout":
            raise httpx.ReadTimeout("simulated read timeout", request=request)
        if failure == "connect":
            raise httpx.ConnectError("simulated connection refused", request=request)
        if isinstance(failure, int):
            kind = "rate_limit_error" if failure == 429 else "api_error"
            return self._respond(error(failure, kind, "Simulated failure."))
        params = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        key = request.headers.get("Idempotency-Key")
        replayed = False
        if request.method == "POST" and key:
            signature = json.dumps([request.url.path, sorted(params.items())])
            stored = self._idempotent.get(key)
            if stored is None:
                result = self._route(request.method, request.url.path, params)
                if result[0] < 400 or result[0] == 402:
                    self._idempotent[key] = (signature, result)
            elif stored[0] != signature:
                result = error(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}'.",
                )
            else:
                result, replayed = stored[1], True
        else:
            result = self._route(request.method, request.url.path, params)
        if failure == "lost_response":
            raise httpx.ReadTimeout("simulated response lost", request=request)
        if failure == "garbage":
            return httpx.Response(200, text="<html>502 Bad Gateway</html>")
        return self._respond(result, replayed=replayed)

    def _respond(self, result: Result, *, replayed: bool = False) -> httpx.Response:
        headers = {"Request-Id": self._id("req")}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return httpx.Response(result[0], json=result[1], headers=headers)

    def _route(self, method: str, path: str, params: dict[str, str]) -> Result:
        routes: list[tuple[str, str, Any]] = [
            ("POST", r"/v1/customers", self._create_customer),
            ("POST", r"/v1/customers/(?P<cus>[^/]+)/sources", self._create_source),
            ("POST", r"/v1/payment_methods", self._create_payment_method),
            ("POST", r"/v1/payment_methods/(?P<pm>[^/]+)/attach", self._attach),
            ("POST", r"/v1/payment_intents", self._create_intent),
            ("GET", r"/v1/payment_intents/(?P<pi>[^/]+)", self._get_intent),
            ("POST", r"/v1/refunds", self._create_refund),
        ]
        for verb, pattern, view in routes:
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                result: Result = view(params, **match.groupdict())
                return result
        return error(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _create_customer(self, params: dict[str, str]) -> Result:
        customer: Json = {
            "id": self._id("cus"),
            "object": "customer",
            "name": params.get("name"),
            "email": params.get("email"),
            "metadata": _metadata(params),
        }
        self.customers[customer["id"]] = customer
        return 200, customer

    def _create_source(self, params: dict[str, str], cus: str) -> Result:
        if cus not in self.customers:
            return missing("customer", cus, "customer")
        if params.get("source") != BANK_TOKEN:
            message = f"No such token: '{params.get('source')}'"
            return error(400, "invalid_request_error", message, code="resource_missing")
        spec = FAKE_TOKENS["tok_ach"]
        account: Json = {
            "id": self._id("ba"),
            "object": "bank_account",
            "bank_name": "STRIPE TEST BANK",
            "last4": spec.last4,
            "fingerprint": _fingerprint(BANK_TOKEN),
            "routing_number": "110000000",
            "status": "verified",
            "customer": cus,
            "currency": "usd",
        }
        self.payment_methods[account["id"]] = account
        self._tokens[account["id"]] = "tok_ach"
        return 200, account

    def _create_payment_method(self, params: dict[str, str]) -> Result:
        token = params.get("card[token]", "")
        spec = FAKE_TOKENS.get(token)
        if params.get("type") != "card" or spec is None or spec.type != "card":
            message = f"No such token: '{token}'"
            return error(
                400, "invalid_request_error", message, code="resource_missing", param="card[token]"
            )
        pm: Json = {
            "id": self._id("pm"),
            "object": "payment_method",
            "type": "card",
            "customer": None,
            "card": {
                "brand": spec.brand,
                "last4": spec.last4,
                "exp_month": FAKE_EXP_MONTH,
                "exp_year": FAKE_EXP_YEAR,
                "fingerprint": _fingerprint(token),
                "funding": "credit",
                "country": "US",
            },
        }
        self.payment_methods[pm["id"]] = pm
        self._tokens[pm["id"]] = token
        return 200, pm

    def _attach(self, params: dict[str, str], pm: str) -> Result:
        method = self.payment_methods.get(pm)
        if method is None:
            return missing("PaymentMethod", pm, "payment_method")
        customer = params.get("customer", "")
        if customer not in self.customers:
            return missing("customer", customer, "customer")
        attach_error = FAKE_TOKENS[self._tokens[pm]].attach_error
        if attach_error is not None:
            message = DECLINE_MESSAGES[attach_error]
            return error(402, "card_error", message, code=attach_error, param="exp_month")
        method["customer"] = customer
        return 200, method

    def _create_intent(self, params: dict[str, str]) -> Result:
        amount, currency = params.get("amount", ""), params.get("currency", "")
        if not amount.isdigit() or int(amount) < 1:
            return error(400, "invalid_request_error", "Invalid integer", param="amount")
        if not re.fullmatch(r"[a-z]{3}", currency):
            return error(400, "invalid_request_error", f"Invalid currency: {currency}")
        if params.get("confirm") != "true" or params.get("off_session") != "true":
            return error(400, "invalid_request_error", "simulator expects confirm+off_session")
        method = self.payment_methods.get(params.get("payment_method", ""))
        if method is None:
            ident = params.get("payment_method", "")
            message = f"No such PaymentMethod: '{ident}'"
            return error(
                400,
                "invalid_request_error",
                message,
                code="resource_missing",
                param="payment_method",
            )
        if method["customer"] != params.get("customer"):
            message = "The PaymentMethod is not attached to this Customer."
            return error(400, "invalid_request_error", message, param="payment_method")
        spec = FAKE_TOKENS[self._tokens[method["id"]]]
        intent: Json = {
            "id": self._id("pi"),
            "object": "payment_intent",
            "amount": int(amount),
            "currency": currency,
            "customer": params["customer"],
            "payment_method": method["id"],
            "description": params.get("description"),
            "metadata": _metadata(params),
            "last_payment_error": None,
            "amount_refunded": 0,
            "status": self.ach_status if spec.type == "ach" else "succeeded",
        }
        self.payment_intents[intent["id"]] = intent
        if self.next_intent_status is not None:
            intent["status"], self.next_intent_status = self.next_intent_status, None
            return 200, intent
        if spec.decline_code is not None:
            card_error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": spec.decline_code,
                "message": DECLINE_MESSAGES[spec.decline_code],
            }
            intent["status"], intent["last_payment_error"] = "requires_payment_method", card_error
            return 402, {"error": {**card_error, "payment_intent": intent}}
        return 200, intent

    def _get_intent(self, params: dict[str, str], pi: str) -> Result:
        intent = self.payment_intents.get(pi)
        return (200, intent) if intent is not None else missing("payment_intent", pi, "intent")

    def _refunded(self, pi: str, add: int = 0) -> int:
        intent = self.payment_intents[pi]
        intent["amount_refunded"] += add
        return int(intent["amount_refunded"])

    def _create_refund(self, params: dict[str, str]) -> Result:
        pi = params.get("payment_intent", "")
        intent = self.payment_intents.get(pi)
        if intent is None:
            return missing("payment_intent", pi, "payment_intent")
        amount = int(params.get("amount") or intent["amount"])
        if intent["status"] not in ("succeeded", "processing"):
            message = "This PaymentIntent does not have a successful charge to refund."
            return error(400, "invalid_request_error", message, code="charge_not_refundable")
        remaining = intent["amount"] - self._refunded(pi)
        if remaining <= 0:
            message = f"Charge for {pi} has already been refunded."
            return error(400, "invalid_request_error", message, code="charge_already_refunded")
        if amount > remaining:
            message = f"Refund amount ({amount}) is greater than unrefunded amount ({remaining})"
            return error(
                400, "invalid_request_error", message, code="amount_too_large", param="amount"
            )
        self._refunded(pi, amount)
        refund: Json = {
            "id": self._id("re"),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": pi,
            "status": "succeeded",
            "metadata": _metadata(params),
        }
        self.refunds[refund["id"]] = refund
        return 200, refund


def _metadata(params: dict[str, str]) -> dict[str, str]:
    return {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[") and k.endswith("]")}


def _fingerprint(token: str) -> str:
    return hashlib.sha256(f"sim:{token}".encode()).hexdigest()[:16]
