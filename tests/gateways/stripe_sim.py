"""A small stateful Stripe API simulator, served over real HTTP on a loopback port.

It answers the endpoints `StripeGateway` (the official `stripe` SDK) uses with Stripe's documented
object and error shapes, knows the same test tokens as the fake gateway (`FAKE_TOKENS`) under
their Stripe test-mode names (`TEST_TOKEN_ALIASES`: `btok_us_verified...` bank tokens,
`tok_visa_debit`), and implements Stripe's idempotency: a POST with a known
`Idempotency-Key` replays the stored response (`Idempotent-Replayed: true`), or fails with an
`idempotency_error` if the parameters differ. Successful and 402 results are stored; validation
errors are not. Point a gateway at it with `stripe_api_base=sim.api_base` while it runs
(`with StripeSimulator() as sim:`).

`fail_next(kind)` injects one failure into the next request: "timeout" (nothing happens; the
answer is held until the client gives up), "disconnect" (the connection is closed without an
answer), an HTTP status such as 500/503/429 (nothing happens), "lost_response" (processed, then
held until the client gives up) or "garbage" (processed, then an unreadable 200).

A bank debit of a returning ACH token fails at once (the intent comes back
`requires_payment_method` with the return's code); with `ach_status = "processing"` it is
`processing` first, and the return shows on the next retrieve, as it arrives days later for real.
`respond_next(status, body)` answers the next request with exactly that, doing nothing.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import select
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx

from app.gateways.fake import (
    DECLINE_MESSAGES,
    FAKE_EXP_MONTH,
    FAKE_EXP_YEAR,
    FAKE_TOKENS,
    FakeToken,
    decline_message,
)
from app.gateways.stripe import TEST_TOKEN_ALIASES

SIM_API_KEY = "sk_test_simulator_51Hx0000000000000000"
# Stripe's test-mode token name -> the fake's token it stands for.
STRIPE_TEST_TOKENS = {
    **{token: token for token in FAKE_TOKENS},
    **{stripe: ours for ours, stripe in TEST_TOKEN_ALIASES.items()},
}
HOLD_LIMIT_SECONDS = 30.0  # a held answer waits at most this long for the client to give up

Json = dict[str, Any]
Result = tuple[int, Json]
Failure = Literal["timeout", "disconnect", "lost_response", "garbage"] | int


@dataclass(frozen=True)
class Canned:
    """A response given as is, without touching the simulator's state."""

    status: int
    body: object
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    content: bytes


Action = Reply | Literal["hold", "disconnect"]


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
        self._returns: dict[str, Json] = {}  # intent id -> the ACH return still on its way
        self._idempotent: dict[str, tuple[str, Result]] = {}
        self._failures: list[Failure | Canned] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # the server answers each connection on its own thread
        self._server: _SimulatorServer | None = None

    # -- the HTTP server -----------------------------------------------------------------------

    def __enter__(self) -> StripeSimulator:
        self._server = _SimulatorServer(self)
        threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    @property
    def api_base(self) -> str:
        assert self._server is not None, "use the simulator as a context manager to serve it"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- test hooks ------------------------------------------------------------------------------

    def fail_next(self, *kinds: Failure) -> None:
        with self._lock:
            self._failures.extend(kinds)

    def respond_next(self, status: int, body: object, **headers: str) -> None:
        with self._lock:
            self._failures.append(Canned(status, body, tuple(headers.items())))

    @property
    def money_moving_intents(self) -> list[Json]:
        with self._lock:
            return [
                pi
                for pi in self.payment_intents.values()
                if pi["status"] in ("succeeded", "processing")
            ]

    def _id(self, prefix: str) -> str:
        return f"{prefix}_sim{next(self._ids):06d}"

    # -- Stripe ----------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> Action:
        with self._lock:
            self.requests.append(request)
            failure = self._failures.pop(0) if self._failures else None
            if isinstance(failure, Canned):
                content = json.dumps(failure.body).encode()
                return Reply(failure.status, dict(failure.headers), content)
            if request.headers.get("Authorization") != f"Bearer {self.api_key}":
                return self._respond(
                    error(401, "authentication_error", "Invalid API Key provided: sk_test_****0000")
                )
            if failure == "timeout":
                return "hold"
            if failure == "disconnect":
                return "disconnect"
            if isinstance(failure, int):
                kind = "rate_limit_error" if failure == 429 else "api_error"
                return self._respond(error(failure, kind, "Simulated failure."))
            reply = self._process(request)
        if failure == "lost_response":
            return "hold"
        if failure == "garbage":
            return Reply(200, {"Content-Type": "text/html"}, b"<html>502 Bad Gateway</html>")
        return reply

    def _process(self, request: httpx.Request) -> Reply:
        params = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        key = request.headers.get("Idempotency-Key")
        replayed = False
        if request.method == "POST" and key:
            signature = json.dumps([request.url.path, sorted(params.items())])
            stored = self._idempotent.get(key)
            if stored is None:
                result = self._route(request.method, request.url.path, params)
                if result[0] < 400 or result[0] == 402:
                    # A replay answers what the first call answered, not the object's state now.
                    self._idempotent[key] = (signature, copy.deepcopy(result))
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
        return self._respond(result, replayed=replayed)

    def _respond(self, result: Result, *, replayed: bool = False) -> Reply:
        headers = {"Request-Id": self._id("req"), "Content-Type": "application/json"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return Reply(result[0], headers, json.dumps(result[1]).encode())

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
        source = params.get("source", "")
        token = STRIPE_TEST_TOKENS.get(source) if source.startswith("btok_") else None
        if token is None:
            message = f"No such token: '{source}'"
            return error(400, "invalid_request_error", message, code="resource_missing")
        account: Json = {
            "id": self._id("ba"),
            "object": "bank_account",
            "bank_name": "STRIPE TEST BANK",
            "last4": FAKE_TOKENS[token].last4,
            "fingerprint": _fingerprint(source),
            "routing_number": "110000000",
            "status": "verified",
            "customer": cus,
            "currency": "usd",
        }
        self.payment_methods[account["id"]] = account
        self._tokens[account["id"]] = token
        return 200, account

    def _create_payment_method(self, params: dict[str, str]) -> Result:
        token = params.get("card[token]", "")
        ours = STRIPE_TEST_TOKENS.get(token)
        spec = FAKE_TOKENS[ours] if ours is not None else None
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
                "funding": spec.funding,
                "country": "US",
            },
        }
        self.payment_methods[pm["id"]] = pm
        self._tokens[pm["id"]] = str(ours)
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
        if spec.decline_code is None:
            return 200, intent
        if spec.type == "ach":
            debit_return = _ach_return(spec, method)
            if intent["status"] == "processing":
                self._returns[intent["id"]] = debit_return
            else:
                _fail(intent, debit_return)
            return 200, intent
        card_error = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": spec.decline_code,
            "message": DECLINE_MESSAGES[spec.decline_code],
            "payment_method": method,
        }
        _fail(intent, card_error)
        return 402, {"error": {**card_error, "payment_intent": intent}}

    def _get_intent(self, params: dict[str, str], pi: str) -> Result:
        intent = self.payment_intents.get(pi)
        if intent is None:
            return missing("payment_intent", pi, "intent")
        if pi in self._returns:  # the bank's return has arrived
            _fail(intent, self._returns.pop(pi))
        return 200, intent

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


def _fail(intent: Json, last_payment_error: Json) -> None:
    intent["status"], intent["last_payment_error"] = "requires_payment_method", last_payment_error


def _ach_return(spec: FakeToken, account: Json) -> Json:
    """A returned bank debit as the intent reports it: the failure code in `code` (there is no
    `decline_code`, which is cards'), the legacy bank account in `source`."""
    return {
        "type": "invalid_request_error",
        "code": spec.decline_code,
        "message": decline_message(spec),
        "source": account,
    }


def _metadata(params: dict[str, str]) -> dict[str, str]:
    return {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[") and k.endswith("]")}


def _fingerprint(token: str) -> str:
    return hashlib.sha256(f"sim:{token}".encode()).hexdigest()[:16]


class _SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sim: StripeSimulator) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.sim = sim


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's client expects
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall
    server: _SimulatorServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        return None  # keep the test output quiet

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        host, port = self.server.server_address[:2]
        request = httpx.Request(
            self.command,
            f"http://{host!s}:{port}{self.path}",
            headers=list(self.headers.items()),
            content=body,
        )
        action = self.server.sim.handle(request)
        if action == "hold":
            self._hold_until_the_client_gives_up()
        if not isinstance(action, Reply):
            self.close_connection = True
            return
        self.send_response(action.status)
        for name, value in action.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(action.content)))
        self.end_headers()
        self.wfile.write(action.content)

    def _hold_until_the_client_gives_up(self) -> None:
        """Answer nothing until the client closes the connection (its timeout), like a gateway
        that is slow or whose answer was lost on the way."""
        deadline = time.monotonic() + HOLD_LIMIT_SECONDS
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            try:
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    return
            except OSError:  # reset by the client: gone all the same
                return
