"""The fake gateway's ledger file is cheap: one long-lived connection per process, WAL with
synchronous=NORMAL, one transaction per charge (issue 16: the old ledger's two connections and
two fsynced commits per charge distorted the runner benchmark). Exactly-once across processes is
proved in test_fake_gateway.py (four processes, one key, one charge)."""

from __future__ import annotations

import gc
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gateway_support import charge_once

from app.gateways import GatewayDeclined, GatewaySettings
from app.gateways.fake import FakeGateway, ledger_summary
from app.gateways.fake import ledger as ledger_module


def _file_gateway(path: Path) -> FakeGateway:
    return FakeGateway(GatewaySettings(fake_ledger_path=str(path)))


def _connection(gateway: FakeGateway) -> sqlite3.Connection:
    return gateway._ledger._connection.conn


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The databases sqlite3.connect opens from the ledger module while the test runs."""
    paths: list[str] = []
    real_connect: Callable[..., sqlite3.Connection] = sqlite3.connect

    def counting_connect(database: str, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        paths.append(database)
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(ledger_module.sqlite3, "connect", counting_connect)
    return paths


async def test_a_process_keeps_one_connection_per_ledger_file(
    tmp_path: Path, opened: list[str]
) -> None:
    path = tmp_path / "one.sqlite3"
    first, second = _file_gateway(path), _file_gateway(path)
    method = (await first.attach_method(token="tok_visa", customer_reference="c")).reference
    for n in range(25):
        await charge_once(first if n % 2 else second, method, f"k-{n}")
    assert first.summary()["charges"] == 25
    assert ledger_summary(str(path))["calls"] == 25
    assert opened == [str(path)]
    assert _connection(first) is _connection(second)


async def test_the_connection_closes_with_its_last_user(tmp_path: Path, opened: list[str]) -> None:
    path = tmp_path / "closing.sqlite3"
    gateway = _file_gateway(path)
    assert ledger_summary(str(path))["charges"] == 0  # shares the gateway's connection
    key = (os.getpid(), str(path))
    assert key in ledger_module._shared
    del gateway
    gc.collect()
    assert key not in ledger_module._shared
    assert ledger_summary(str(path))["charges"] == 0  # opens (and closes) a fresh one
    assert opened == [str(path), str(path)]


def test_the_file_is_in_wal_with_normal_sync(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite3"
    gateway = _file_gateway(path)
    assert _connection(gateway).execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with sqlite3.connect(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("ledger", ["memory", "file"])
async def test_a_charge_is_one_transaction(tmp_path: Path, ledger: str) -> None:
    path = str(tmp_path / "tx.sqlite3") if ledger == "file" else None
    gateway = FakeGateway(GatewaySettings(fake_ledger_path=path))
    method = (await gateway.attach_method(token="tok_visa", customer_reference="c")).reference
    statements: list[str] = []
    _connection(gateway).set_trace_callback(statements.append)
    try:
        await charge_once(gateway, method, "one-tx")
        await charge_once(gateway, method, "one-tx")  # a replay costs the same
    finally:
        _connection(gateway).set_trace_callback(None)
    assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ] * 2
    assert gateway.summary() == {
        "charges": 1,
        "declines": 0,
        "refunds": 0,
        "calls": 2,
        "distinct_keys": 1,
    }


async def test_in_memory_when_no_file_is_configured(opened: list[str]) -> None:
    gateway = FakeGateway()
    method = (await gateway.attach_method(token="tok_visa", customer_reference="c")).reference
    await charge_once(gateway, method, "k")
    assert gateway.ledger_path is None
    assert opened == [":memory:"]


async def test_a_ledger_file_from_before_method_types_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE charges (seq INTEGER PRIMARY KEY AUTOINCREMENT, idempotency_key TEXT "
            "NOT NULL UNIQUE, reference TEXT NOT NULL UNIQUE, request TEXT NOT NULL, amount "
            "INTEGER NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, decline_code TEXT, "
            "decline_message TEXT)"
        )
        old.execute(
            "INSERT INTO charges (idempotency_key, reference, request, amount, currency, status, "
            "decline_code) VALUES ('old', 'pi_old', '[]', 1, 'USD', 'declined', 'card_declined')"
        )
    gateway = _file_gateway(path)
    method = await gateway.attach_method(token="tok_achAccountClosed", customer_reference="c")
    with pytest.raises(GatewayDeclined) as new:
        await charge_once(gateway, method.reference, "new")
    assert (new.value.code, new.value.method_type, new.value.hard) == (
        "account_closed",
        "ach",
        True,
    )
    with pytest.raises(GatewayDeclined) as old_decline:
        await gateway.get_charge("pi_old")
    assert (old_decline.value.code, old_decline.value.method_type) == ("card_declined", None)
