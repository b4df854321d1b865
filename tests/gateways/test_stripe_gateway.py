"""Stripe-only behaviour: the requests the SDK sends, error mapping, timeouts and webhook
signatures, against the Stripe simulator served on loopback (see stripe_sim.py)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from gateway_support import NOW, STRIPE_WEBHOOK_SECRET, stripe_settings
from stripe_sim import SIM_API_KEY, StripeSimulator

from app.gateways import (
    GatewayConfigurationError,
    GatewayDeclined,
    GatewayError,
    GatewayMethodRejected,
    GatewayNotFound,
    GatewayRateLimited,
    GatewayRequestError,
    GatewaySettings,
    GatewayUnavailable,
    WebhookVerificationError,
)
from app.gateways.stripe import (
    IDEMPOTENCY_METADATA_KEY,
    STRIPE_API_VERSION,
    StripeGateway,
    sign_stripe_webhook,
)


def form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode(), keep_blank_values=True))


async def _ready(stripe: StripeGateway, token: str = "tok_visa") -> tuple[str, str]:  # noqa: S107
    customer = await stripe.create_customer(name="Acme", email=None, metadata={})
    method = await stripe.attach_method(token=token, customer_reference=customer)
    return customer, method.reference


async def _charge(stripe: StripeGateway, customer: str, method: str, key: str = "k-1") -> Any:
    return await stripe.charge(
        amount=1999,
        currency="EUR",
        method_reference=method,
        customer_reference=customer,
        idempotency_key=key,
        description="Invoice INV-7",
        metadata={"invoice_id": "inv_7"},
    )


async def test_charge_request_shape(stripe: StripeGateway, sim: StripeSimulator) -> None:
    customer, method = await _ready(stripe)
    charge = await _charge(stripe, customer, method)
    request = sim.requests[-1]
    assert (request.method, str(request.url)) == ("POST", f"{sim.api_base}/v1/payment_intents")
    assert request.headers["Authorization"] == f"Bearer {SIM_API_KEY}"
    assert request.headers["Idempotency-Key"] == "k-1"
    assert request.headers["Stripe-Version"] == STRIPE_API_VERSION
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(request) == {
        "amount": "1999",
        "currency": "eur",
        "customer": customer,
        "payment_method": method,
        "confirm": "true",
        "off_session": "true",
        "automatic_payment_methods[enabled]": "true",
        "automatic_payment_methods[allow_redirects]": "never",
        "description": "Invoice INV-7",
        "metadata[invoice_id]": "inv_7",
        f"metadata[{IDEMPOTENCY_METADATA_KEY}]": "k-1",
    }
    assert (charge.currency, charge.amount, charge.reference) == ("EUR", 1999, first_intent(sim))


def first_intent(sim: StripeSimulator) -> str:
    return str(next(iter(sim.payment_intents)))


async def test_customer_and_attach_requests(stripe: StripeGateway, sim: StripeSimulator) -> None:
    await stripe.create_customer(name="Acme", email="ops@acme.test", metadata={"tenant": "t-9"})
    await stripe.create_customer(name="Acme", email="ops@acme.test", metadata={"tenant": "t-9"})
    create, again = sim.requests[-2:]
    # No key derived from the customer: the SDK's random one, so two namesakes are two customers.
    assert create.headers["Idempotency-Key"] != again.headers["Idempotency-Key"]
    assert len(sim.customers) == 2
    assert form(create) == {"name": "Acme", "email": "ops@acme.test", "metadata[tenant]": "t-9"}
    customer = next(iter(sim.customers))
    await stripe.attach_method(token="tok_visa", customer_reference=customer)
    pm_create, pm_attach = sim.requests[-2:]
    assert (pm_create.url.path, form(pm_create)) == (
        "/v1/payment_methods",
        {"type": "card", "card[token]": "tok_visa"},
    )
    assert pm_attach.url.path.endswith("/attach")
    assert form(pm_attach) == {"customer": customer}
    assert pm_create.headers["Idempotency-Key"] != pm_attach.headers["Idempotency-Key"]


async def test_attach_ach_uses_the_bank_token(stripe: StripeGateway, sim: StripeSimulator) -> None:
    customer, reference = await _ready(stripe, "tok_ach")
    request = sim.requests[-1]
    assert request.url.path == f"/v1/customers/{customer}/sources"
    assert form(request) == {"source": "btok_us_verified"}
    assert reference.startswith("ba_")


async def test_attach_existing_payment_method(stripe: StripeGateway, sim: StripeSimulator) -> None:
    customer, first = await _ready(stripe)
    method = await stripe.attach_method(token=first, customer_reference=customer)
    assert method.reference == first
    assert sim.requests[-1].url.path == f"/v1/payment_methods/{first}/attach"


async def test_attach_retry_after_lost_response_replays(
    stripe: StripeGateway, sim: StripeSimulator
) -> None:
    customer = await stripe.create_customer(name="Acme", email=None, metadata={})
    sim.fail_next("lost_response")
    with pytest.raises(GatewayUnavailable):
        await stripe.attach_method(token="tok_visa", customer_reference=customer)
    method = await stripe.attach_method(token="tok_visa", customer_reference=customer)
    assert list(sim.payment_methods) == [method.reference]


async def test_refund_request_shape(stripe: StripeGateway, sim: StripeSimulator) -> None:
    charge = await _charge(stripe, *await _ready(stripe))
    refund = await stripe.refund(charge_reference=charge.reference, amount=500, idempotency_key="r")
    request = sim.requests[-1]
    assert request.headers["Idempotency-Key"] == "r"
    assert form(request) == {
        "payment_intent": charge.reference,
        "amount": "500",
        f"metadata[{IDEMPOTENCY_METADATA_KEY}]": "r",
    }
    assert (refund.charge_reference, refund.amount) == (charge.reference, 500)


async def test_get_charge_reads_the_key_from_metadata(stripe: StripeGateway) -> None:
    charge = await _charge(stripe, *await _ready(stripe), key="inv-7-try-1")
    assert (await stripe.get_charge(charge.reference)).idempotency_key == "inv-7-try-1"


async def test_lost_response_then_replay(stripe: StripeGateway, sim: StripeSimulator) -> None:
    customer, method = await _ready(stripe)
    sim.fail_next("lost_response")
    with pytest.raises(GatewayUnavailable) as caught:
        await _charge(stripe, customer, method)
    assert caught.value.code == "timeout"
    charge = await _charge(stripe, customer, method)
    assert sim.requests[-1].headers["Idempotency-Key"] == "k-1"
    assert len(sim.payment_intents) == 1
    assert charge.reference in sim.payment_intents


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        ("timeout", "timeout"),
        ("disconnect", "connection_error"),
        (500, "api_error"),
        (503, "api_error"),
        (429, "rate_limited"),  # without a rate limit in front, a 429 surfaces at once
        ("garbage", "gateway_unavailable"),
    ],
)
async def test_technical_failures_are_unavailable(
    stripe: StripeGateway, sim: StripeSimulator, failure: Any, code: str
) -> None:
    customer, method = await _ready(stripe)
    sim.fail_next(failure)
    with pytest.raises(GatewayUnavailable) as caught:
        await _charge(stripe, customer, method)
    assert caught.value.code == code
    assert (await _charge(stripe, customer, method)).status == "succeeded"
    assert len(sim.money_moving_intents) == 1


async def test_ach_processing_is_pending(stripe: StripeGateway, sim: StripeSimulator) -> None:
    sim.ach_status = "processing"
    charge = await _charge(stripe, *await _ready(stripe, "tok_ach"))
    assert charge.status == "pending"


async def test_ach_return_arrives_after_processing(
    stripe: StripeGateway, sim: StripeSimulator
) -> None:
    sim.ach_status = "processing"
    charge = await _charge(stripe, *await _ready(stripe, "tok_achInsufficientFunds"))
    assert charge.status == "pending"
    with pytest.raises(GatewayDeclined) as caught:  # what reconciliation sees days later
        await stripe.get_charge(charge.reference)
    decline = caught.value
    assert (decline.code, decline.method_type, decline.hard) == ("insufficient_funds", "ach", False)
    assert decline.charge_reference == charge.reference


@pytest.mark.parametrize(
    ("token", "sent"),
    [
        ("tok_visaDebit", {"type": "card", "card[token]": "tok_visa_debit"}),
        ("tok_achAccountClosed", {"source": "btok_us_verified_accountClosed"}),
        ("tok_achInsufficientFunds", {"source": "btok_us_verified_insufficientFunds"}),
    ],
)
async def test_test_tokens_go_to_stripe_under_stripes_names(
    stripe: StripeGateway, sim: StripeSimulator, token: str, sent: dict[str, str]
) -> None:
    customer = await stripe.create_customer(name="Acme", email=None, metadata={})
    await stripe.attach_method(token=token, customer_reference=customer)
    assert any(form(request) == sent for request in sim.requests)


@pytest.mark.parametrize(
    ("status", "code"),
    [("requires_action", "authentication_required"), ("canceled", "canceled")],
)
async def test_intent_statuses_that_are_declines(
    stripe: StripeGateway, sim: StripeSimulator, status: str, code: str
) -> None:
    customer, method = await _ready(stripe)
    sim.next_intent_status = status
    with pytest.raises(GatewayDeclined) as caught:
        await _charge(stripe, customer, method)
    assert caught.value.code == code
    assert caught.value.charge_reference in sim.payment_intents


async def test_unexpected_intent_status(stripe: StripeGateway, sim: StripeSimulator) -> None:
    customer, method = await _ready(stripe)
    sim.next_intent_status = "requires_confirmation"
    with pytest.raises(GatewayRequestError) as caught:
        await _charge(stripe, customer, method)
    assert caught.value.code == "unexpected_status"


def _error(kind: str, **fields: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": f"{kind} happened", **fields}}


ERROR_CASES: list[tuple[int, dict[str, Any], type[GatewayError], str]] = [
    (
        402,
        _error("card_error", code="card_declined", decline_code="do_not_honor"),
        GatewayDeclined,
        "do_not_honor",
    ),
    (402, _error("card_error", code="expired_card"), GatewayDeclined, "expired_card"),
    (500, _error("api_error"), GatewayUnavailable, "api_error"),
    (502, {"unexpected": True}, GatewayUnavailable, "api_error"),
    (429, _error("invalid_request_error", code="lock_timeout"), GatewayRateLimited, "lock_timeout"),
    (429, _error("rate_limit_error"), GatewayRateLimited, "rate_limited"),
    (
        400,
        _error("invalid_request_error", code="parameter_missing"),
        GatewayRequestError,
        "parameter_missing",
    ),
    (401, _error("authentication_error"), GatewayRequestError, "authentication_error"),
    (
        404,
        _error("invalid_request_error", code="resource_missing"),
        GatewayNotFound,
        "resource_missing",
    ),
    (409, _error("idempotency_error"), GatewayRequestError, "idempotency_error"),
    (400, _error("idempotency_error"), GatewayRequestError, "idempotency_error"),
]


@pytest.mark.parametrize(("status", "body", "expected", "code"), ERROR_CASES)
async def test_error_mapping(
    stripe: StripeGateway,
    sim: StripeSimulator,
    status: int,
    body: dict[str, Any],
    expected: type[GatewayError],
    code: str,
) -> None:
    sim.respond_next(status, body)
    with pytest.raises(expected) as caught:
        await stripe.charge(
            amount=100,
            currency="USD",
            method_reference="pm_1",
            customer_reference="cus_1",
            idempotency_key="k",
        )
    assert type(caught.value) is expected
    assert caught.value.code == code
    if status == 402:
        assert caught.value.message == body["error"]["message"]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        ("0.25", 0.25),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
async def test_a_429_carries_retry_after(
    stripe: StripeGateway, sim: StripeSimulator, header: str | None, seconds: float | None
) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    sim.respond_next(429, _error("rate_limit_error"), **headers)
    with pytest.raises(GatewayRateLimited) as caught:
        await stripe.get_charge("pi_1")
    assert caught.value.retry_after == seconds


async def test_card_errors_while_attaching_are_rejections(
    stripe: StripeGateway, sim: StripeSimulator
) -> None:
    sim.respond_next(402, _error("card_error", code="incorrect_number"))
    with pytest.raises(GatewayMethodRejected) as caught:
        await stripe.attach_method(token="tok_x", customer_reference="cus_1")
    assert caught.value.code == "incorrect_number"


async def test_decline_code_is_hard_for_stolen_cards(
    stripe: StripeGateway, sim: StripeSimulator
) -> None:
    body = _error("card_error", code="card_declined", decline_code="stolen_card")
    body["error"]["payment_intent"] = {"id": "pi_9", "object": "payment_intent"}
    sim.respond_next(402, body)
    with pytest.raises(GatewayDeclined) as caught:
        await stripe.charge(
            amount=1,
            currency="USD",
            method_reference="pm",
            customer_reference="c",
            idempotency_key="k",
        )
    assert caught.value.hard
    assert caught.value.charge_reference == "pi_9"


@pytest.mark.parametrize("failure", ["timeout", "disconnect", "undecodable body"])
async def test_transport_failures_are_unavailable(
    stripe: StripeGateway, sim: StripeSimulator, failure: str
) -> None:
    if failure == "undecodable body":
        sim.respond_next(200, {"id": "pi_1"}, **{"Content-Encoding": "gzip"})
    else:
        sim.fail_next(failure)  # type: ignore[arg-type]
    with pytest.raises(GatewayUnavailable) as caught:
        await stripe.get_charge("pi_1")
    assert caught.value.code == ("timeout" if failure == "timeout" else "connection_error")


async def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = StripeGateway(stripe_settings(stripe_api_base=f"http://127.0.0.1:{port}"))
    with pytest.raises(GatewayUnavailable) as caught:
        await gateway.get_charge("pi_1")
    assert caught.value.code == "connection_error"
    await gateway.aclose()


async def test_the_api_key_never_leaks(sim: StripeSimulator) -> None:
    key = "sk_live_supersecret_0123456789"
    body = _error("authentication_error")
    body["error"]["message"] = f"Invalid API Key provided: {key}"
    sim.respond_next(401, body)
    settings = stripe_settings(stripe_api_key=key, stripe_api_base=sim.api_base)
    gateway = StripeGateway(settings)
    with pytest.raises(GatewayRequestError) as caught:
        await gateway.create_customer(name="Acme", email=None, metadata={})
    assert key not in str(caught.value)
    assert key not in caught.value.message
    # The SDK's exception (whose message echoes Stripe's) is not chained into tracebacks.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert key not in repr(stripe_settings(stripe_api_key=key))
    await gateway.aclose()


def test_missing_api_key_is_a_configuration_error() -> None:
    with pytest.raises(GatewayConfigurationError):
        StripeGateway(GatewaySettings())


async def test_malformed_token_never_reaches_stripe(
    stripe: StripeGateway, sim: StripeSimulator
) -> None:
    with pytest.raises(GatewayMethodRejected):
        await stripe.attach_method(token="tok_../../v1/refunds", customer_reference="cus_1")
    assert sim.requests == []


def _gateway(clock: Callable[[], float], secret: str | None = STRIPE_WEBHOOK_SECRET) -> Any:
    return StripeGateway(stripe_settings(stripe_webhook_secret=secret), clock=clock)


PAYLOAD = b'{"id": "evt_1", "object": "event", "type": "charge.refunded", "data": {"object": {}}}'


def test_webhook_accepts_any_matching_v1() -> None:
    good = sign_stripe_webhook(PAYLOAD, STRIPE_WEBHOOK_SECRET, NOW).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},{good},v0=ignored"
    event = _gateway(lambda: NOW + 10).verify_webhook(
        payload=PAYLOAD, headers={"stripe-signature": header}
    )
    assert event.type == "charge.refunded"


@pytest.mark.parametrize(
    ("signed_at", "now", "ok"),
    [(NOW, NOW + 300, True), (NOW, NOW + 301, False), (NOW + 60, NOW, True)],
)
def test_webhook_tolerance(signed_at: int, now: int, ok: bool) -> None:
    gateway = _gateway(lambda: float(now))
    headers = {"Stripe-Signature": sign_stripe_webhook(PAYLOAD, STRIPE_WEBHOOK_SECRET, signed_at)}
    if ok:
        assert gateway.verify_webhook(payload=PAYLOAD, headers=headers).id == "evt_1"
    else:
        with pytest.raises(WebhookVerificationError, match="tolerance"):
            gateway.verify_webhook(payload=PAYLOAD, headers=headers)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"t={NOW}",
        "v1=abc",
        f"t=yesterday,v1={'0' * 64}",
        f"t=\u00b2,v1={'0' * 64}",
        sign_stripe_webhook(PAYLOAD, "whsec_other", NOW),
    ],
)
def test_webhook_bad_headers(header: str) -> None:
    with pytest.raises(WebhookVerificationError):
        _gateway(lambda: NOW).verify_webhook(payload=PAYLOAD, headers={"Stripe-Signature": header})


def test_webhook_without_a_secret() -> None:
    headers = {"Stripe-Signature": sign_stripe_webhook(PAYLOAD, STRIPE_WEBHOOK_SECRET, NOW)}
    with pytest.raises(WebhookVerificationError, match="not configured"):
        _gateway(lambda: NOW, secret=None).verify_webhook(payload=PAYLOAD, headers=headers)


async def test_api_base_with_trailing_slash(sim: StripeSimulator) -> None:
    gateway = StripeGateway(stripe_settings(stripe_api_base=sim.api_base + "/"))
    await gateway.create_customer(name="Acme", email=None, metadata={})
    assert str(sim.requests[-1].url) == f"{sim.api_base}/v1/customers"
    await gateway.aclose()
