"""`FakeGateway`: the deterministic, in-process `PaymentGateway` for development, tests and load
runs. Tokens in `tokens`, the books in `ledger`, failure injection in `failures`.

Latency: `gateway.latency_seconds = 0.05` makes every call sleep first. Introspection for tests:
`charges`, `refunds`, `charge_calls`, `charge_count_for(prefix)`, `summary()`, `reset()`, and
`ledger_summary(path)` for a process that does not own the gateway.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from functools import partial

from app.gateways.base import (
    AttachedMethod,
    Charge,
    GatewayMethodRejected,
    GatewayNotFound,
    GatewayRequestError,
    GatewaySettings,
    Refund,
    WebhookEvent,
    WebhookVerificationError,
    header_value,
    parse_webhook_event,
    require_idempotency_key,
    validate_money,
)
from app.gateways.fake import ledger
from app.gateways.fake.failures import FailureMode, FailureOperation, FailurePlan, timeout
from app.gateways.fake.ledger import ChargeRow, Ledger, RefundRow
from app.gateways.fake.tokens import (
    DECLINE_MESSAGES,
    FAKE_EXP_MONTH,
    FAKE_EXP_YEAR,
    FAKE_TOKENS,
    decline_message,
    fingerprint_for,
)

FAKE_SIGNATURE_HEADER = "Fake-Signature"
_METHOD_RE = re.compile(r"^pm_fake_(?P<token>.+)_[0-9a-f]{12}$")


def sign_fake_webhook(payload: bytes, secret: str = "whsec_fake") -> str:  # noqa: S107
    """The `Fake-Signature` header value the fake gateway accepts for `payload`."""
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


class FakeGateway:
    """The fake `PaymentGateway`. See the package docstring for tokens and test hooks."""

    name: str = "fake"

    def __init__(self, settings: GatewaySettings | None = None) -> None:
        settings = settings or GatewaySettings()
        self.latency_seconds: float = settings.fake_latency_seconds
        self._webhook_secret = settings.fake_webhook_secret
        self._ledger = Ledger(settings.fake_ledger_path)
        self._failures = FailurePlan()

    @property
    def ledger_path(self) -> str | None:
        return self._ledger.path

    def fail_next(
        self,
        count: int = 1,
        mode: FailureMode = "timeout",
        operation: FailureOperation = "charge",
        retry_after: float | None = None,
    ) -> None:
        """Make the next `count` calls of `operation` fail.

        "timeout"/"error" raise `GatewayUnavailable` without doing anything; "rate_limited"
        raises `GatewayRateLimited` (an HTTP 429, with `retry_after` if given) without doing
        anything; "lost_response" does the operation (the charge is recorded) and then raises
        `GatewayUnavailable`, like a response lost on the network. "any" matches every
        operation. Calls queue in order.
        """
        self._failures.add(count, mode, operation, retry_after)

    async def _enter(self, operation: FailureOperation) -> bool:
        """Latency plus injected failures; returns True when the response must be lost."""
        if self.latency_seconds > 0:
            await asyncio.sleep(self.latency_seconds)
        return self._failures.take(operation)

    # -- PaymentGateway ----------------------------------------------------------------------

    async def create_customer(
        self, *, name: str, email: str | None, metadata: Mapping[str, str]
    ) -> str:
        lost = await self._enter("customer")
        if not name:
            raise GatewayRequestError("customer name is required", code="parameter_missing")
        reference = f"cus_fake_{secrets.token_hex(12)}"
        if lost:
            raise timeout("customer")
        return reference

    async def attach_method(self, *, token: str, customer_reference: str) -> AttachedMethod:
        lost = await self._enter("attach")
        if not customer_reference:
            raise GatewayRequestError("customer_reference is required", code="parameter_missing")
        spec = FAKE_TOKENS.get(token)
        if spec is None:
            raise GatewayMethodRejected("invalid_token", f"No such token: {token!r}")
        if spec.attach_error is not None:
            raise GatewayMethodRejected(spec.attach_error, DECLINE_MESSAGES.get(spec.attach_error))
        is_card = spec.type == "card"
        method = AttachedMethod(
            reference=f"pm_fake_{token}_{secrets.token_hex(6)}",
            type=spec.type,
            brand=spec.brand,
            last4=spec.last4,
            exp_month=FAKE_EXP_MONTH if is_card else None,
            exp_year=FAKE_EXP_YEAR if is_card else None,
            fingerprint=fingerprint_for(token),
            funding=spec.funding,
        )
        if lost:
            raise timeout("attach")
        return method

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
        try:
            lost = await self._enter("charge")
            row = _charge_row(
                amount=amount,
                currency=currency,
                method_reference=method_reference,
                customer_reference=customer_reference,
                idempotency_key=idempotency_key,
                description=description,
                metadata=metadata,
            )
        except BaseException:
            # Every call is counted, the ones that fail before reaching the books included.
            self._ledger.run(partial(ledger.record_call, key=idempotency_key))
            raise
        stored = self._ledger.run(partial(ledger.put_charge, row=row))  # one transaction
        if lost:
            raise timeout("charge")
        return stored.outcome()

    async def get_charge(self, reference: str) -> Charge:
        await self._enter("get_charge")
        found = self._ledger.run(partial(ledger.find_charge, column="reference", value=reference))
        if found is None:
            raise GatewayNotFound(f"No such charge: {reference!r}")
        return found.outcome()

    async def refund(self, *, charge_reference: str, amount: int, idempotency_key: str) -> Refund:
        lost = await self._enter("refund")
        require_idempotency_key(idempotency_key)
        validate_money(amount)
        row = RefundRow(
            idempotency_key=idempotency_key,
            reference=f"re_fake_{secrets.token_hex(12)}",
            request=json.dumps([charge_reference, amount]),
            charge_reference=charge_reference,
            amount=amount,
        )
        stored = self._ledger.run(partial(ledger.put_refund, row=row))
        if lost:
            raise timeout("refund")
        return stored.refund()

    def verify_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        signature = header_value(headers, FAKE_SIGNATURE_HEADER)
        if not signature:
            raise WebhookVerificationError(f"missing {FAKE_SIGNATURE_HEADER} header")
        expected = sign_fake_webhook(payload, self._webhook_secret)
        if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
            raise WebhookVerificationError("webhook signature does not match")
        return parse_webhook_event(payload)

    async def aclose(self) -> None:
        # Nothing to release now: the ledger's connection closes when the last object using it
        # is gone, and an in-memory ledger must outlive aclose() so tests can still inspect it.
        return None

    # -- introspection for tests (reads the shared file in ledger mode) ----------------------

    @property
    def charges(self) -> list[Charge]:
        """Charges that moved money (declines excluded), oldest first."""
        return [row.outcome() for row in self._ledger.run(ledger.charge_rows)]

    @property
    def refunds(self) -> list[Refund]:
        return [row.refund() for row in self._ledger.run(ledger.refund_rows)]

    @property
    def charge_calls(self) -> int:
        """Every `charge()` call so far, replays and injected failures included."""
        return self.summary()["calls"]

    @property
    def call_times(self) -> list[float]:
        """When each `charge()` call reached the gateway (`time.time()`), in order."""
        return self._ledger.run(ledger.call_times)

    def charge_count_for(self, idempotency_key_prefix: str) -> int:
        """How many charges that moved money have a key starting with the prefix."""
        return sum(c.idempotency_key.startswith(idempotency_key_prefix) for c in self.charges)

    def summary(self) -> dict[str, int]:
        """Same shape as `ledger_summary(path)`."""
        return self._ledger.run(ledger.summary)

    def reset(self) -> None:
        """Forget everything, pending injected failures included (clears a shared file too)."""
        self._failures.clear()
        self._ledger.run(ledger.clear)


def _charge_row(
    *,
    amount: int,
    currency: str,
    method_reference: str,
    customer_reference: str,
    idempotency_key: str,
    description: str | None,
    metadata: Mapping[str, str] | None,
) -> ChargeRow:
    """The charge a valid request makes, its outcome decided by the method's token."""
    require_idempotency_key(idempotency_key)
    validate_money(amount, currency)
    if not customer_reference:
        raise GatewayRequestError("customer_reference is required", code="parameter_missing")
    match = _METHOD_RE.match(method_reference)
    spec = FAKE_TOKENS.get(match["token"]) if match else None
    if spec is None or spec.attach_error is not None:
        raise GatewayRequestError(
            f"No such payment method: {method_reference!r}", code="resource_missing"
        )
    decline = spec.decline_code
    return ChargeRow(
        idempotency_key=idempotency_key,
        reference=f"pi_fake_{secrets.token_hex(12)}",
        request=json.dumps(
            [amount, currency, method_reference, customer_reference, description, metadata or {}],
            sort_keys=True,
        ),
        amount=amount,
        currency=currency,
        status="declined" if decline else "succeeded",
        decline_code=decline,
        decline_message=decline_message(spec),
        method_type=spec.type if decline else None,
    )
