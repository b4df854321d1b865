"""A deterministic, in-process payment gateway for development, tests and load runs.

Payment methods come from Stripe-style test tokens (`FAKE_TOKENS`, in `tokens`): `tok_visa`
always pays, `tok_chargeDeclined` always declines, `tok_expiredCard` cannot be attached, and so
on. State lives in a SQLite ledger (`ledger`): private and in memory by default, or a file
(`GatewaySettings.fake_ledger_path`) shared by several processes with exactly-once charges per
idempotency key. Failures are injected per instance (`failures`); see `FakeGateway`.
"""

from app.gateways.fake.failures import FailureMode, FailureOperation
from app.gateways.fake.gateway import FAKE_SIGNATURE_HEADER, FakeGateway, sign_fake_webhook
from app.gateways.fake.ledger import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    ledger_call_times,
    ledger_summary,
)
from app.gateways.fake.tokens import (
    ACH_RETURN_MESSAGES,
    DECLINE_MESSAGES,
    FAKE_EXP_MONTH,
    FAKE_EXP_YEAR,
    FAKE_TOKENS,
    FakeToken,
    decline_message,
    fingerprint_for,
)

__all__ = [
    "ACH_RETURN_MESSAGES",
    "DECLINE_MESSAGES",
    "FAKE_EXP_MONTH",
    "FAKE_EXP_YEAR",
    "FAKE_SIGNATURE_HEADER",
    "FAKE_TOKENS",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "FailureMode",
    "FailureOperation",
    "FakeGateway",
    "FakeToken",
    "decline_message",
    "fingerprint_for",
    "ledger_call_times",
    "ledger_summary",
    "sign_fake_webhook",
]
