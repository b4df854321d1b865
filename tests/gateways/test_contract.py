"""The behaviour every registered gateway must share, run over each of them (see `harness`)."""

from __future__ import annotations

import asyncio
import json

import pytest
from gateway_support import Harness

from app.gateways import (
    HARD_DECLINE_CODES,
    Charge,
    GatewayDeclined,
    GatewayMethodRejected,
    GatewayNotFound,
    GatewayRequestError,
    PaymentGateway,
    WebhookVerificationError,
)

CARDS = {  # token: (brand, last4, funding)
    "tok_visa": ("visa", "4242", "credit"),
    "tok_mastercard": ("mastercard", "4444", "credit"),
    "tok_amex": ("amex", "0005", "credit"),
    "tok_visaDebit": ("visa", "5556", "debit"),
}
BANK_ACCOUNTS = {  # token: last4
    "tok_ach": "6789",
    "tok_achInsufficientFunds": "2227",
    "tok_achAccountClosed": "1113",
}
DECLINES = {  # token: (code, method type, hard)
    "tok_chargeDeclined": ("card_declined", "card", False),
    "tok_insufficientFunds": ("insufficient_funds", "card", False),
    "tok_chargeDeclinedStolenCard": ("stolen_card", "card", True),
    "tok_chargeDeclinedLostCard": ("lost_card", "card", True),
    "tok_chargeDeclinedFraudulent": ("fraudulent", "card", True),
    "tok_achInsufficientFunds": ("insufficient_funds", "ach", False),  # R01: may be re-presented
    "tok_achAccountClosed": ("account_closed", "ach", True),  # R02: never again
}


async def _charge(h: Harness, method: str, customer: str, key: str, amount: int = 1250) -> Charge:
    return await h.gateway.charge(
        amount=amount,
        currency="USD",
        method_reference=method,
        customer_reference=customer,
        idempotency_key=key,
        description="Invoice INV-1",
        metadata={"invoice_id": "inv_1"},
    )


def test_satisfies_the_protocol(harness: Harness) -> None:
    assert isinstance(harness.gateway, PaymentGateway)
    assert harness.gateway.name == harness.name


async def test_create_customer_returns_a_reference(harness: Harness) -> None:
    first, second = await harness.customer(), await harness.customer()
    assert first
    assert second
    assert first != second


@pytest.mark.parametrize(("token", "expected"), CARDS.items())
async def test_attach_card(harness: Harness, token: str, expected: tuple[str, str, str]) -> None:
    customer, method = await harness.method(token)
    assert (method.type, method.brand, method.last4, method.funding) == ("card", *expected)
    assert method.exp_month == 12
    assert method.exp_year is not None
    assert method.exp_year >= 2030
    again = await harness.gateway.attach_method(token=token, customer_reference=customer)
    assert again.fingerprint == method.fingerprint != ""


@pytest.mark.parametrize(("token", "last4"), BANK_ACCOUNTS.items())
async def test_attach_ach(harness: Harness, token: str, last4: str) -> None:
    _, method = await harness.method(token)
    assert (method.type, method.brand, method.last4) == ("ach", "bank", last4)
    assert method.exp_month is None
    assert method.exp_year is None
    assert method.funding is None
    _, again = await harness.method(token)
    assert again.fingerprint == method.fingerprint


async def test_distinct_methods_have_distinct_fingerprints(harness: Harness) -> None:
    tokens = {*CARDS, *BANK_ACCOUNTS, *DECLINES}
    prints = {(await harness.method(token))[1].fingerprint for token in tokens}
    assert len(prints) == len(tokens)


async def test_expired_card_is_refused_at_attach(harness: Harness) -> None:
    customer = await harness.customer()
    with pytest.raises(GatewayMethodRejected) as caught:
        await harness.gateway.attach_method(token="tok_expiredCard", customer_reference=customer)
    assert caught.value.code == "expired_card"


@pytest.mark.parametrize("token", ["tok_doesNotExist", "tok bad/../x", ""])
async def test_unknown_token_is_refused(harness: Harness, token: str) -> None:
    customer = await harness.customer()
    with pytest.raises(GatewayMethodRejected) as caught:
        await harness.gateway.attach_method(token=token, customer_reference=customer)
    assert caught.value.code == "invalid_token"


@pytest.mark.parametrize("token", [*CARDS, "tok_ach"])
async def test_charge_succeeds(harness: Harness, token: str) -> None:
    customer, method = await harness.method(token)
    charge = await _charge(harness, method.reference, customer, f"c-{token}")
    assert (charge.amount, charge.currency, charge.status) == (1250, "USD", "succeeded")
    assert charge.idempotency_key == f"c-{token}"
    assert charge.reference
    assert await harness.gateway.get_charge(charge.reference) == charge
    assert harness.count_charges() == 1


@pytest.mark.parametrize(("token", "expected"), DECLINES.items())
async def test_declines_carry_the_code(
    harness: Harness, token: str, expected: tuple[str, str, bool]
) -> None:
    code = expected[0]
    customer, method = await harness.method(token)
    for attempt in ("first", "replay"):
        with pytest.raises(GatewayDeclined) as caught:
            await _charge(harness, method.reference, customer, "k-decline")
        decline = caught.value
        assert (decline.code, decline.method_type, decline.hard) == expected, attempt
        assert decline.message
        assert decline.hard is (code in HARD_DECLINE_CODES)
        assert decline.charge_reference is not None
    with pytest.raises(GatewayDeclined) as looked_up:
        await harness.gateway.get_charge(decline.charge_reference)
    assert (looked_up.value.code, looked_up.value.method_type, looked_up.value.hard) == expected
    assert harness.count_charges() == 0


async def test_replay_returns_the_same_charge(harness: Harness) -> None:
    customer, method = await harness.method()
    first = await _charge(harness, method.reference, customer, "inv-1-attempt-1")
    second = await _charge(harness, method.reference, customer, "inv-1-attempt-1")
    assert first == second
    assert harness.count_charges() == 1
    other = await _charge(harness, method.reference, customer, "inv-2-attempt-1")
    assert other != first
    assert harness.count_charges() == 2


async def test_concurrent_calls_with_one_key_make_one_charge(harness: Harness) -> None:
    customer, method = await harness.method()
    results = await asyncio.gather(
        *(_charge(harness, method.reference, customer, "same-key") for _ in range(10))
    )
    assert len(set(results)) == 1
    assert harness.count_charges() == 1


async def test_declined_replay_reraises_the_same_decline(harness: Harness) -> None:
    customer, method = await harness.method("tok_insufficientFunds")
    declines = []
    for _ in range(2):
        with pytest.raises(GatewayDeclined) as caught:
            await _charge(harness, method.reference, customer, "declined-key")
        declines.append(caught.value)
    first, second = declines
    assert (first.code, first.message, first.charge_reference) == (
        second.code,
        second.message,
        second.charge_reference,
    )
    assert harness.count_charges() == 0


async def test_key_reused_with_other_parameters_is_refused(harness: Harness) -> None:
    customer, method = await harness.method()
    await _charge(harness, method.reference, customer, "reused", amount=1000)
    with pytest.raises(GatewayRequestError):
        await _charge(harness, method.reference, customer, "reused", amount=2000)
    assert harness.count_charges() == 1


@pytest.mark.parametrize(("amount", "currency"), [(0, "USD"), (-5, "USD"), (100, "usd"), (1, "")])
async def test_impossible_money_is_refused(harness: Harness, amount: int, currency: str) -> None:
    customer, method = await harness.method()
    with pytest.raises(GatewayRequestError):
        await harness.gateway.charge(
            amount=amount,
            currency=currency,
            method_reference=method.reference,
            customer_reference=customer,
            idempotency_key="bad-money",
        )
    assert harness.count_charges() == 0


async def test_charge_with_unknown_method_is_a_request_error(harness: Harness) -> None:
    customer = await harness.customer()
    with pytest.raises(GatewayRequestError):
        await _charge(harness, "pm_does_not_exist", customer, "unknown-method")


async def test_charge_needs_the_customer(harness: Harness) -> None:
    _, method = await harness.method()
    with pytest.raises(GatewayRequestError):
        await _charge(harness, method.reference, "", "no-customer")
    assert harness.count_charges() == 0


@pytest.mark.parametrize("reference", ["pi_does_not_exist", ""])
async def test_get_unknown_charge(harness: Harness, reference: str) -> None:
    with pytest.raises(GatewayNotFound):
        await harness.gateway.get_charge(reference)


async def test_full_refund(harness: Harness) -> None:
    customer, method = await harness.method()
    charge = await _charge(harness, method.reference, customer, "to-refund")
    refund = await harness.gateway.refund(
        charge_reference=charge.reference, amount=1250, idempotency_key="r-1"
    )
    assert (refund.charge_reference, refund.amount, refund.idempotency_key) == (
        charge.reference,
        1250,
        "r-1",
    )
    with pytest.raises(GatewayDeclined) as caught:
        await harness.gateway.refund(
            charge_reference=charge.reference, amount=1, idempotency_key="r-2"
        )
    assert caught.value.code == "charge_already_refunded"


async def test_partial_refunds_never_exceed_the_charge(harness: Harness) -> None:
    customer, method = await harness.method()
    charge = await _charge(harness, method.reference, customer, "partial", amount=1000)
    refund = harness.gateway.refund
    await refund(charge_reference=charge.reference, amount=400, idempotency_key="p-1")
    await refund(charge_reference=charge.reference, amount=400, idempotency_key="p-2")
    with pytest.raises(GatewayDeclined) as caught:
        await refund(charge_reference=charge.reference, amount=201, idempotency_key="p-3")
    assert caught.value.code == "amount_too_large"
    assert not caught.value.hard
    last = await refund(charge_reference=charge.reference, amount=200, idempotency_key="p-4")
    assert last.amount == 200
    assert harness.count_refunds() == 3


async def test_refund_replay_returns_the_same_refund(harness: Harness) -> None:
    customer, method = await harness.method()
    charge = await _charge(harness, method.reference, customer, "replay-refund")
    calls = [
        harness.gateway.refund(charge_reference=charge.reference, amount=500, idempotency_key="rr")
        for _ in range(3)
    ]
    first, *others = [await call for call in calls]
    assert all(other == first for other in others)
    assert harness.count_refunds() == 1
    with pytest.raises(GatewayRequestError):
        await harness.gateway.refund(
            charge_reference=charge.reference, amount=600, idempotency_key="rr"
        )


async def test_refund_of_unknown_or_declined_charge(harness: Harness) -> None:
    for unknown in ("pi_nope", ""):
        with pytest.raises(GatewayNotFound):
            await harness.gateway.refund(
                charge_reference=unknown, amount=100, idempotency_key=f"r-unknown-{unknown}"
            )
    customer, method = await harness.method("tok_chargeDeclined")
    with pytest.raises(GatewayDeclined) as declined:
        await _charge(harness, method.reference, customer, "declined-then-refund")
    reference = declined.value.charge_reference
    assert reference is not None
    with pytest.raises(GatewayDeclined) as caught:
        await harness.gateway.refund(
            charge_reference=reference, amount=100, idempotency_key="r-declined"
        )
    assert caught.value.code == "charge_not_refundable"


async def test_refund_amount_must_be_positive(harness: Harness) -> None:
    customer, method = await harness.method()
    charge = await _charge(harness, method.reference, customer, "zero-refund")
    with pytest.raises(GatewayRequestError):
        await harness.gateway.refund(
            charge_reference=charge.reference, amount=0, idempotency_key="r-zero"
        )


def test_webhook_with_a_good_signature(harness: Harness) -> None:
    payload = json.dumps(
        {"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}}
    ).encode()
    event = harness.gateway.verify_webhook(payload=payload, headers=harness.sign_webhook(payload))
    assert (event.id, event.type, dict(event.data)) == (
        "evt_1",
        "payment_intent.succeeded",
        {"object": {"id": "pi_1"}},
    )
    lower = {k.lower(): v for k, v in harness.sign_webhook(payload).items()}
    assert harness.gateway.verify_webhook(payload=payload, headers=lower) == event


def test_webhook_with_a_bad_signature(harness: Harness) -> None:
    payload = b'{"id": "evt_1", "type": "charge.refunded", "data": {}}'
    headers = harness.sign_webhook(payload)
    with pytest.raises(WebhookVerificationError):
        harness.gateway.verify_webhook(payload=payload.replace(b"evt_1", b"evt_2"), headers=headers)
    with pytest.raises(WebhookVerificationError):
        harness.gateway.verify_webhook(payload=payload, headers={})
    forged = {name: value[:-4] + "0000" for name, value in headers.items()}
    with pytest.raises(WebhookVerificationError):
        harness.gateway.verify_webhook(payload=payload, headers=forged)


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[1, 2]", b'{"id": "evt_1", "type": "x"}', b'{"type": "x", "data": {}}'],
)
def test_signed_but_malformed_webhook(harness: Harness, payload: bytes) -> None:
    with pytest.raises(WebhookVerificationError):
        harness.gateway.verify_webhook(payload=payload, headers=harness.sign_webhook(payload))
