"""A deterministic, in-process payment gateway for development, tests and load runs.

Payment methods come from Stripe-style test tokens (`FAKE_TOKENS`): `tok_visa` always pays,
`tok_chargeDeclined` always declines, `tok_expiredCard` cannot be attached, and so on. The
reference returned by `attach_method` (`pm_fake_<token>_<12 hex>`) encodes the token, so any
process can decide a charge's outcome from the reference alone.

State (charges, refunds, every `charge()` call) lives in SQLite: a private in-memory database by
default, or the file `GatewaySettings.fake_ledger_path` so several processes share one ledger.
Both modes run the same SQL, so they behave identically. An idempotency key is UNIQUE in the
ledger and each write is one `BEGIN IMMEDIATE` transaction, so concurrent calls with one key, even
from different processes, record exactly one charge.

Failure injection (per instance, never shared through the ledger)::

    gateway.fail_next()                                  # next charge(): timeout, nothing done
    gateway.fail_next(2, mode="error", operation="any")  # next two calls of any kind: 5xx-like
    gateway.fail_next(mode="lost_response")              # next charge() IS recorded, then times out
    gateway.latency_seconds = 0.05                       # every call sleeps first

Introspection for tests: `charges`, `refunds`, `charge_calls`, `charge_count_for(prefix)`,
`summary()`, `reset()`, and `ledger_summary(path)` for a process that does not own the gateway.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar, get_args

from app.gateways.base import (
    AttachedMethod,
    Charge,
    GatewayDeclined,
    GatewayMethodRejected,
    GatewayNotFound,
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

FailureMode = Literal["timeout", "error", "lost_response"]
FailureOperation = Literal["charge", "refund", "attach", "customer", "get_charge", "any"]

FAKE_SIGNATURE_HEADER = "Fake-Signature"
FAKE_EXP_MONTH, FAKE_EXP_YEAR = 12, 2034
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class FakeToken:
    type: PaymentMethodType
    brand: str
    last4: str
    decline_code: str | None = None  # every charge is declined with this code
    attach_error: str | None = None  # attaching is refused with this code


FAKE_TOKENS: Mapping[str, FakeToken] = MappingProxyType(
    {
        "tok_visa": FakeToken("card", "visa", "4242"),
        "tok_mastercard": FakeToken("card", "mastercard", "4444"),
        "tok_amex": FakeToken("card", "amex", "0005"),
        "tok_chargeDeclined": FakeToken("card", "visa", "0002", decline_code="card_declined"),
        "tok_insufficientFunds": FakeToken(
            "card", "visa", "9995", decline_code="insufficient_funds"
        ),
        "tok_expiredCard": FakeToken("card", "visa", "0069", attach_error="expired_card"),
        "tok_chargeDeclinedStolenCard": FakeToken(
            "card", "visa", "9979", decline_code="stolen_card"
        ),
        "tok_chargeDeclinedLostCard": FakeToken("card", "visa", "9987", decline_code="lost_card"),
        "tok_ach": FakeToken("ach", "bank", "6789"),
    }
)

# The customer-facing texts Stripe uses for these codes.
DECLINE_MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        "card_declined": "Your card was declined.",
        "insufficient_funds": "Your card has insufficient funds.",
        "expired_card": "Your card has expired.",
        "stolen_card": "Your card was declined.",
        "lost_card": "Your card was declined.",
    }
)

_METHOD_RE = re.compile(r"^pm_fake_(?P<token>.+)_[0-9a-f]{12}$")
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    reference TEXT NOT NULL UNIQUE,
    request TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('succeeded', 'declined')),
    decline_code TEXT,
    decline_message TEXT
);
CREATE TABLE IF NOT EXISTS refunds (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    reference TEXT NOT NULL UNIQUE,
    request TEXT NOT NULL,
    charge_reference TEXT NOT NULL,
    amount INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS charge_calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL
);
"""
_CHARGE_COLUMNS = (
    "idempotency_key, reference, request, amount, currency, status, decline_code, decline_message"
)
_REFUND_COLUMNS = "idempotency_key, reference, request, charge_reference, amount"


def fingerprint_for(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def sign_fake_webhook(payload: bytes, secret: str = "whsec_fake") -> str:  # noqa: S107
    """The `Fake-Signature` header value the fake gateway accepts for `payload`."""
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class _ChargeRow:
    idempotency_key: str
    reference: str
    request: str
    amount: int
    currency: str
    status: str
    decline_code: str | None
    decline_message: str | None

    def outcome(self) -> Charge:
        if self.status == "declined":
            raise GatewayDeclined(
                self.decline_code or "card_declined",
                self.decline_message,
                charge_reference=self.reference,
            )
        # The fake settles instantly, so everything that is not a decline has succeeded.
        return Charge(self.reference, self.amount, self.currency, "succeeded", self.idempotency_key)


@dataclass(frozen=True, slots=True)
class _RefundRow:
    idempotency_key: str
    reference: str
    request: str
    charge_reference: str
    amount: int

    def refund(self) -> Refund:
        return Refund(self.reference, self.charge_reference, self.amount, self.idempotency_key)


def _use_wal(conn: sqlite3.Connection) -> None:
    """Put the ledger file in WAL mode (it stays so): several runner processes share it, and
    with a rollback journal their writers queued far longer and, under load, one saw "disk
    I/O error" on COMMIT. Switching needs a moment alone with the file, which processes
    starting together may not get at once, so it is retried briefly."""
    for _ in range(100):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            time.sleep(0.02)
    raise sqlite3.OperationalError("could not switch the fake gateway's ledger to WAL")


class _Ledger:
    """SQLite state; one short `BEGIN IMMEDIATE` transaction per operation."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._memory: sqlite3.Connection | None = None
        if path is None:
            # One connection for the object's lifetime: ":memory:" dies with its connection.
            self._memory = sqlite3.connect(
                ":memory:", isolation_level=None, check_same_thread=False
            )
            self._memory.executescript(_SCHEMA)
        self._schema_ready = path is None

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        if not self._schema_ready:
            # A fresh data directory: the ledger is its first file.
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS, isolation_level=None)
        if not self._schema_ready:
            _use_wal(conn)
            conn.executescript(_SCHEMA)
            self._schema_ready = True
        return conn

    def run_sync(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._memory if self._memory is not None else self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = op(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        finally:
            if conn is not self._memory:
                conn.close()

    async def run(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._memory is not None:
            return self.run_sync(op)
        return await asyncio.to_thread(self.run_sync, op)


def _key_reused(kind: str, key: str) -> GatewayRequestError:
    return GatewayRequestError(
        f"idempotency key {key!r} was already used for a {kind} with different parameters",
        code="idempotency_key_reused",
        status=400,
    )


def _record_call(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("INSERT INTO charge_calls (idempotency_key) VALUES (?)", (key,))


def _put_charge(conn: sqlite3.Connection, row: _ChargeRow) -> _ChargeRow:
    # The UNIQUE key makes the first writer win, even across processes; everyone reads it back.
    conn.execute(
        f"INSERT INTO charges ({_CHARGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608
        "ON CONFLICT (idempotency_key) DO NOTHING",
        astuple(row),
    )
    stored = _find_charge(conn, "idempotency_key", row.idempotency_key)
    assert stored is not None
    if stored.request != row.request:
        raise _key_reused("charge", row.idempotency_key)
    return stored


def _find_charge(conn: sqlite3.Connection, column: str, value: str) -> _ChargeRow | None:
    found = conn.execute(
        f"SELECT {_CHARGE_COLUMNS} FROM charges WHERE {column} = ?",  # noqa: S608
        (value,),
    ).fetchone()
    return None if found is None else _ChargeRow(*found)


def _put_refund(conn: sqlite3.Connection, row: _RefundRow) -> _RefundRow:
    found = conn.execute(
        f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE idempotency_key = ?",  # noqa: S608
        (row.idempotency_key,),
    ).fetchone()
    if found is not None:
        existing = _RefundRow(*found)
        if existing.request != row.request:
            raise _key_reused("refund", row.idempotency_key)
        return existing
    charge = conn.execute(
        "SELECT amount, status FROM charges WHERE reference = ?", (row.charge_reference,)
    ).fetchone()
    if charge is None:
        raise GatewayNotFound(f"No such charge: {row.charge_reference!r}")
    if charge[1] == "declined":
        raise GatewayDeclined("charge_not_refundable", "This charge did not succeed.")
    (refunded,) = conn.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE charge_reference = ?",
        (row.charge_reference,),
    ).fetchone()
    remaining = charge[0] - refunded
    if remaining <= 0:
        raise GatewayDeclined("charge_already_refunded", "The charge is already refunded.")
    if row.amount > remaining:
        raise GatewayDeclined(
            "amount_too_large",
            f"Refund amount ({row.amount}) is greater than unrefunded amount ({remaining}).",
        )
    conn.execute(
        f"INSERT INTO refunds ({_REFUND_COLUMNS}) VALUES (?, ?, ?, ?, ?)",  # noqa: S608
        (row.idempotency_key, row.reference, row.request, row.charge_reference, row.amount),
    )
    return row


def _summary(conn: sqlite3.Connection) -> dict[str, int]:
    def count(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    return {
        "charges": count("SELECT COUNT(*) FROM charges WHERE status != 'declined'"),
        "declines": count("SELECT COUNT(*) FROM charges WHERE status = 'declined'"),
        "refunds": count("SELECT COUNT(*) FROM refunds"),
        "calls": count("SELECT COUNT(*) FROM charge_calls"),
        "distinct_keys": count("SELECT COUNT(DISTINCT idempotency_key) FROM charge_calls"),
    }


def ledger_summary(path: str) -> dict[str, int]:
    """Counts in a ledger file, readable from any process: charges (money moved), declines,
    refunds, calls (every `charge()` call, replays and failures included), distinct_keys."""
    return _Ledger(path).run_sync(_summary)


@dataclass(slots=True)
class _PendingFailure:
    remaining: int
    mode: FailureMode
    operation: FailureOperation


class FakeGateway:
    """The fake `PaymentGateway`. See the module docstring for tokens and test hooks."""

    name: str = "fake"

    def __init__(self, settings: GatewaySettings | None = None) -> None:
        settings = settings or GatewaySettings()
        self.latency_seconds: float = settings.fake_latency_seconds
        self._webhook_secret = settings.fake_webhook_secret
        self._ledger = _Ledger(settings.fake_ledger_path)
        self._failures: list[_PendingFailure] = []

    @property
    def ledger_path(self) -> str | None:
        return self._ledger.path

    # -- failure injection -------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        mode: FailureMode = "timeout",
        operation: FailureOperation = "charge",
    ) -> None:
        """Make the next `count` calls of `operation` fail.

        "timeout"/"error" raise `GatewayUnavailable` without doing anything; "lost_response" does
        the operation (the charge is recorded) and then raises `GatewayUnavailable`, like a
        response lost on the network. "any" matches every operation. Calls queue in order.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        if mode not in get_args(FailureMode) or operation not in get_args(FailureOperation):
            raise ValueError(f"unknown failure mode/operation: {mode!r}/{operation!r}")
        self._failures.append(_PendingFailure(count, mode, operation))

    async def _enter(self, operation: FailureOperation) -> bool:
        """Latency plus injected failures; returns True when the response must be lost."""
        if self.latency_seconds > 0:
            await asyncio.sleep(self.latency_seconds)
        for failure in self._failures:
            if failure.operation in (operation, "any"):
                failure.remaining -= 1
                if failure.remaining == 0:
                    self._failures.remove(failure)
                if failure.mode == "error":
                    raise GatewayUnavailable(
                        f"fake gateway: upstream error during {operation}", code="upstream_error"
                    )
                if failure.mode == "timeout":
                    raise _timeout(operation)
                return True
        return False

    # -- PaymentGateway ----------------------------------------------------------------------

    async def create_customer(
        self, *, name: str, email: str | None, metadata: Mapping[str, str]
    ) -> str:
        lost = await self._enter("customer")
        if not name:
            raise GatewayRequestError("customer name is required", code="parameter_missing")
        reference = f"cus_fake_{secrets.token_hex(12)}"
        if lost:
            raise _timeout("customer")
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
        )
        if lost:
            raise _timeout("attach")
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
        await self._ledger.run(partial(_record_call, key=idempotency_key))
        lost = await self._enter("charge")
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
        request = json.dumps(
            [amount, currency, method_reference, customer_reference, description, metadata or {}],
            sort_keys=True,
        )
        decline = spec.decline_code
        row = _ChargeRow(
            idempotency_key=idempotency_key,
            reference=f"pi_fake_{secrets.token_hex(12)}",
            request=request,
            amount=amount,
            currency=currency,
            status="declined" if decline else "succeeded",
            decline_code=decline,
            decline_message=DECLINE_MESSAGES.get(decline) if decline else None,
        )
        stored = await self._ledger.run(partial(_put_charge, row=row))
        if lost:
            raise _timeout("charge")
        return stored.outcome()

    async def get_charge(self, reference: str) -> Charge:
        await self._enter("get_charge")
        found = await self._ledger.run(partial(_find_charge, column="reference", value=reference))
        if found is None:
            raise GatewayNotFound(f"No such charge: {reference!r}")
        return found.outcome()

    async def refund(self, *, charge_reference: str, amount: int, idempotency_key: str) -> Refund:
        lost = await self._enter("refund")
        require_idempotency_key(idempotency_key)
        validate_money(amount)
        row = _RefundRow(
            idempotency_key=idempotency_key,
            reference=f"re_fake_{secrets.token_hex(12)}",
            request=json.dumps([charge_reference, amount]),
            charge_reference=charge_reference,
            amount=amount,
        )
        stored = await self._ledger.run(partial(_put_refund, row=row))
        if lost:
            raise _timeout("refund")
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
        # Nothing to release: file connections are per operation, and the in-memory ledger must
        # outlive aclose() so tests can still inspect it.
        return None

    # -- introspection for tests (synchronous; reads the shared file in ledger mode) ---------

    @property
    def charges(self) -> list[Charge]:
        """Charges that moved money (declines excluded), oldest first."""
        rows = self._ledger.run_sync(
            partial(_select_rows, table="charges", where="status != 'declined'")
        )
        return [_ChargeRow(*row).outcome() for row in rows]

    @property
    def refunds(self) -> list[Refund]:
        rows = self._ledger.run_sync(partial(_select_rows, table="refunds"))
        return [_RefundRow(*row).refund() for row in rows]

    @property
    def charge_calls(self) -> int:
        """Every `charge()` call so far, replays and injected failures included."""
        return self.summary()["calls"]

    def charge_count_for(self, idempotency_key_prefix: str) -> int:
        """How many charges that moved money have a key starting with the prefix."""
        return sum(c.idempotency_key.startswith(idempotency_key_prefix) for c in self.charges)

    def summary(self) -> dict[str, int]:
        """Same shape as `ledger_summary(path)`."""
        return self._ledger.run_sync(_summary)

    def reset(self) -> None:
        """Forget everything, pending injected failures included (clears a shared file too)."""
        self._failures.clear()
        self._ledger.run_sync(_clear)


def _timeout(operation: str) -> GatewayUnavailable:
    # A lost response must look exactly like a timeout: the caller cannot tell them apart.
    return GatewayUnavailable(f"fake gateway: timed out during {operation}", code="timeout")


def _select_rows(conn: sqlite3.Connection, table: str, where: str = "1") -> list[Any]:
    columns = _CHARGE_COLUMNS if table == "charges" else _REFUND_COLUMNS
    return conn.execute(
        f"SELECT {columns} FROM {table} WHERE {where} ORDER BY seq"  # noqa: S608
    ).fetchall()


def _clear(conn: sqlite3.Connection) -> None:
    for table in ("charges", "refunds", "charge_calls"):
        conn.execute(f"DELETE FROM {table}")  # noqa: S608
