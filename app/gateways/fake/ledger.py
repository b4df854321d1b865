"""The fake gateway's books: charges, refunds and every `charge()` call, in SQLite.

Without a file, each ledger is a private in-memory database. With `GatewaySettings.
fake_ledger_path`, every process using that file shares one set of books (the runner processes
and the dev server do), and an idempotency key is UNIQUE in it: each operation is one
`BEGIN IMMEDIATE` transaction, so the same key charged from two processes at once records
exactly one charge, the loser reading the winner's row back.

Cheap enough not to distort benchmarks: a process keeps ONE connection per ledger file for as
long as any ledger object uses it (not one per operation), the file is in WAL mode with
`synchronous=NORMAL` (a commit appends to the log without an fsync; a crash of the machine could
lose the last charges of a test ledger, never its consistency), and a charge is one transaction.
Operations run on the caller's thread: each is a few statements on a local file, and the only
wait is for another process's equally short write transaction (busy timeout below).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import TypeVar

from app.gateways.base import (
    Charge,
    GatewayDeclined,
    GatewayNotFound,
    GatewayRequestError,
    PaymentMethodType,
    Refund,
)

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
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
    decline_message TEXT,
    method_type TEXT
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
    idempotency_key TEXT NOT NULL,
    called_at REAL
);
"""
_CHARGE_COLUMNS = (
    "idempotency_key, reference, request, amount, currency, status, decline_code, decline_message, "
    "method_type"
)
_REFUND_COLUMNS = "idempotency_key, reference, request, charge_reference, amount"


@dataclass(frozen=True, slots=True)
class ChargeRow:
    idempotency_key: str
    reference: str
    request: str
    amount: int
    currency: str
    status: str
    decline_code: str | None
    decline_message: str | None
    method_type: PaymentMethodType | None

    def outcome(self) -> Charge:
        if self.status == "declined":
            raise GatewayDeclined(
                self.decline_code or "card_declined",
                self.decline_message,
                charge_reference=self.reference,
                method_type=self.method_type,
            )
        # The fake settles instantly, so everything that is not a decline has succeeded.
        return Charge(self.reference, self.amount, self.currency, "succeeded", self.idempotency_key)


@dataclass(frozen=True, slots=True)
class RefundRow:
    idempotency_key: str
    reference: str
    request: str
    charge_reference: str
    amount: int

    def refund(self) -> Refund:
        return Refund(self.reference, self.charge_reference, self.amount, self.idempotency_key)


class _Connection:
    """One SQLite connection and the lock that keeps its transactions one at a time."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def __del__(self) -> None:
        self.conn.close()


# (process id, absolute path) -> the connection every ledger on that file in this process uses;
# it closes when the last of them is gone. The pid keeps a forked child off its parent's one.
_shared: weakref.WeakValueDictionary[tuple[int, str], _Connection] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def _file_connection(path: str) -> _Connection:
    key = (os.getpid(), os.path.abspath(path))
    with _shared_lock:
        found = _shared.get(key)
        if found is None:
            found = _shared[key] = _Connection(_open_file(path))
        return found


def _open_file(path: str) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)  # a fresh data directory
    conn = sqlite3.connect(
        path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )
    _use_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    _add_column(conn, "charges", "method_type TEXT")
    _add_column(conn, "charge_calls", "called_at REAL")
    return conn


def _add_column(conn: sqlite3.Connection, table: str, column: str) -> None:
    """A ledger file written by an older version (a developer's data/fake-gateway.db) gains the
    columns added since; its old rows say NULL (unknown)."""
    name = column.split()[0]
    if name in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
        return
    try:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    except sqlite3.OperationalError as exc:  # another process added it first
        if "duplicate column" not in str(exc):
            raise


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


class Ledger:
    """The books of one fake gateway: in memory (private) or on a file (shared)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        if path is None:
            memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            memory.executescript(_SCHEMA)
            self._connection = _Connection(memory)
        else:
            self._connection = _file_connection(path)

    def run(self, op: Callable[[sqlite3.Connection], _T]) -> _T:
        """`op` in one write transaction: all of it happens, or none of it."""
        conn = self._connection.conn
        with self._connection.lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = op(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result


def key_reused(kind: str, key: str) -> GatewayRequestError:
    return GatewayRequestError(
        f"idempotency key {key!r} was already used for a {kind} with different parameters",
        code="idempotency_key_reused",
        status=400,
    )


def record_call(conn: sqlite3.Connection, key: str) -> None:
    conn.execute(
        "INSERT INTO charge_calls (idempotency_key, called_at) VALUES (?, ?)", (key, time.time())
    )


def put_charge(conn: sqlite3.Connection, row: ChargeRow) -> ChargeRow:
    """Record the call and the charge; the first writer of a key wins, even across processes,
    and every caller gets the stored row back."""
    record_call(conn, row.idempotency_key)
    conn.execute(
        f"INSERT INTO charges ({_CHARGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608
        "ON CONFLICT (idempotency_key) DO NOTHING",
        astuple(row),
    )
    stored = find_charge(conn, "idempotency_key", row.idempotency_key)
    assert stored is not None
    if stored.request != row.request:
        raise key_reused("charge", row.idempotency_key)
    return stored


def find_charge(conn: sqlite3.Connection, column: str, value: str) -> ChargeRow | None:
    found = conn.execute(
        f"SELECT {_CHARGE_COLUMNS} FROM charges WHERE {column} = ?",  # noqa: S608
        (value,),
    ).fetchone()
    return None if found is None else ChargeRow(*found)


def put_refund(conn: sqlite3.Connection, row: RefundRow) -> RefundRow:
    found = conn.execute(
        f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE idempotency_key = ?",  # noqa: S608
        (row.idempotency_key,),
    ).fetchone()
    if found is not None:
        existing = RefundRow(*found)
        if existing.request != row.request:
            raise key_reused("refund", row.idempotency_key)
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


def charge_rows(conn: sqlite3.Connection) -> list[ChargeRow]:
    """Charges that moved money (declines excluded), oldest first."""
    rows = conn.execute(
        f"SELECT {_CHARGE_COLUMNS} FROM charges "  # noqa: S608
        "WHERE status != 'declined' ORDER BY seq"
    ).fetchall()
    return [ChargeRow(*row) for row in rows]


def refund_rows(conn: sqlite3.Connection) -> list[RefundRow]:
    rows = conn.execute(
        f"SELECT {_REFUND_COLUMNS} FROM refunds ORDER BY seq"  # noqa: S608
    ).fetchall()
    return [RefundRow(*row) for row in rows]


def summary(conn: sqlite3.Connection) -> dict[str, int]:
    def count(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    return {
        "charges": count("SELECT COUNT(*) FROM charges WHERE status != 'declined'"),
        "declines": count("SELECT COUNT(*) FROM charges WHERE status = 'declined'"),
        "refunds": count("SELECT COUNT(*) FROM refunds"),
        "calls": count("SELECT COUNT(*) FROM charge_calls"),
        "distinct_keys": count("SELECT COUNT(DISTINCT idempotency_key) FROM charge_calls"),
    }


def call_times(conn: sqlite3.Connection) -> list[float]:
    rows = conn.execute("SELECT called_at FROM charge_calls ORDER BY seq").fetchall()
    return [row[0] for row in rows if row[0] is not None]


def clear(conn: sqlite3.Connection) -> None:
    for table in ("charges", "refunds", "charge_calls"):
        conn.execute(f"DELETE FROM {table}")  # noqa: S608


def ledger_summary(path: str) -> dict[str, int]:
    """Counts in a ledger file, readable from any process: charges (money moved), declines,
    refunds, calls (every `charge()` call, replays and failures included), distinct_keys."""
    return Ledger(path).run(summary)


def ledger_call_times(path: str) -> list[float]:
    """When each `charge()` call reached a ledger file's gateway (`time.time()`), in order:
    what a test counts per second to check a rate limit across processes."""
    return Ledger(path).run(call_times)
