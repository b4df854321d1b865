"""Fake-only behaviour: failure injection, latency, introspection, and the shared ledger file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from app.gateways import (
    Charge,
    GatewayDeclined,
    GatewaySettings,
    GatewayUnavailable,
)
from app.gateways.fake import FAKE_TOKENS, FakeGateway, ledger_summary, sign_fake_webhook

REPO_ROOT = Path(__file__).resolve().parents[2]


async def _method(gateway: FakeGateway, source: str = "tok_visa") -> str:
    method = await gateway.attach_method(token=source, customer_reference="cus_fake_1")
    return method.reference


async def _charge(gateway: FakeGateway, method: str, key: str, amount: int = 700) -> Charge:
    return await gateway.charge(
        amount=amount,
        currency="EUR",
        method_reference=method,
        customer_reference="cus_fake_1",
        idempotency_key=key,
    )


def test_token_catalogue_follows_the_product_contract() -> None:
    assert FAKE_TOKENS["tok_chargeDeclined"].decline_code == "card_declined"
    assert FAKE_TOKENS["tok_insufficientFunds"].decline_code == "insufficient_funds"
    assert FAKE_TOKENS["tok_expiredCard"].attach_error == "expired_card"
    assert FAKE_TOKENS["tok_ach"].type == "ach"
    always_pay = {t for t, spec in FAKE_TOKENS.items() if not spec.decline_code}
    always_pay -= {t for t, spec in FAKE_TOKENS.items() if spec.attach_error}
    assert always_pay == {"tok_visa", "tok_mastercard", "tok_amex", "tok_visaDebit", "tok_ach"}
    assert FAKE_TOKENS["tok_visaDebit"].funding == "debit"
    assert FAKE_TOKENS["tok_visa"].funding == "credit"
    assert FAKE_TOKENS["tok_ach"].funding is None


async def test_method_reference_encodes_the_token(fake: FakeGateway) -> None:
    reference = await _method(fake, "tok_chargeDeclined")
    assert reference.startswith("pm_fake_tok_chargeDeclined_")
    other_process = FakeGateway()  # knows nothing about the attach, decides from the reference
    with pytest.raises(GatewayDeclined):
        await _charge(other_process, reference, "k")


async def test_timeout_does_nothing(fake: FakeGateway) -> None:
    method = await _method(fake)
    fake.fail_next()
    with pytest.raises(GatewayUnavailable) as caught:
        await _charge(fake, method, "k-1")
    assert caught.value.code == "timeout"
    assert fake.charges == []
    assert fake.charge_calls == 1
    charge = await _charge(fake, method, "k-1")
    assert fake.charges == [charge]
    assert fake.charge_calls == 2


async def test_error_mode_and_any_operation(fake: FakeGateway) -> None:
    fake.fail_next(2, mode="error", operation="any")
    with pytest.raises(GatewayUnavailable) as caught:
        await fake.create_customer(name="Acme", email=None, metadata={})
    assert caught.value.code == "upstream_error"
    with pytest.raises(GatewayUnavailable):
        await fake.attach_method(token="tok_visa", customer_reference="cus_fake_1")
    assert await fake.create_customer(name="Acme", email=None, metadata={})


async def test_failures_only_hit_their_operation_and_run_out(fake: FakeGateway) -> None:
    method = await _method(fake)
    fake.fail_next(2, operation="refund")
    charge = await _charge(fake, method, "k")
    for _ in range(2):
        with pytest.raises(GatewayUnavailable):
            await fake.refund(charge_reference=charge.reference, amount=1, idempotency_key="r")
    assert fake.refunds == []
    refund = await fake.refund(charge_reference=charge.reference, amount=1, idempotency_key="r")
    assert fake.refunds == [refund]


async def test_lost_response_records_the_charge_and_the_replay_finds_it(fake: FakeGateway) -> None:
    method = await _method(fake)
    fake.fail_next(mode="lost_response")
    with pytest.raises(GatewayUnavailable) as caught:
        await _charge(fake, method, "inv-9")
    assert caught.value.code == "timeout"  # indistinguishable from a timeout for the caller
    assert len(fake.charges) == 1
    replay = await _charge(fake, method, "inv-9")
    assert fake.charges == [replay]
    assert fake.charge_count_for("inv-9") == 1
    assert fake.charge_calls == 2


async def test_lost_response_of_a_decline_replays_the_decline(fake: FakeGateway) -> None:
    method = await _method(fake, "tok_chargeDeclinedStolenCard")
    fake.fail_next(mode="lost_response")
    with pytest.raises(GatewayUnavailable):
        await _charge(fake, method, "k")
    with pytest.raises(GatewayDeclined) as caught:
        await _charge(fake, method, "k")
    assert caught.value.code == "stolen_card"
    assert caught.value.hard
    assert fake.summary()["declines"] == 1


async def test_lost_refund_response_then_replay(fake: FakeGateway) -> None:
    charge = await _charge(fake, await _method(fake), "k")
    fake.fail_next(mode="lost_response", operation="refund")
    with pytest.raises(GatewayUnavailable):
        await fake.refund(charge_reference=charge.reference, amount=700, idempotency_key="r")
    refund = await fake.refund(charge_reference=charge.reference, amount=700, idempotency_key="r")
    assert fake.refunds == [refund]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((0,), {}), ((1, "explode"), {}), ((1,), {"operation": "capture"})],
)
def test_fail_next_rejects_nonsense(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"count|unknown"):
        FakeGateway().fail_next(*args, **kwargs)  # type: ignore[arg-type]


async def test_latency() -> None:
    gateway = FakeGateway(GatewaySettings(fake_latency_seconds=0.05))
    assert gateway.latency_seconds == 0.05
    started = time.monotonic()
    await gateway.create_customer(name="Acme", email=None, metadata={})
    assert time.monotonic() - started >= 0.045
    gateway.latency_seconds = 0
    started = time.monotonic()
    await gateway.create_customer(name="Acme", email=None, metadata={})
    assert time.monotonic() - started < 0.045


async def test_introspection_and_reset(fake: FakeGateway) -> None:
    method = await _method(fake)
    await _charge(fake, method, "inv-1/a")
    await _charge(fake, method, "inv-1/b")
    await _charge(fake, method, "inv-2/a")
    await _charge(fake, method, "inv-2/a")
    assert fake.charge_count_for("inv-1/") == 2
    assert fake.charge_count_for("inv-2/") == 1
    assert fake.summary() == {
        "charges": 3,
        "declines": 0,
        "refunds": 0,
        "calls": 4,
        "distinct_keys": 3,
    }
    fake.fail_next()
    fake.reset()
    assert (fake.charges, fake.refunds, fake.charge_calls) == ([], [], 0)
    await _charge(fake, method, "after-reset")  # the pending failure was forgotten too


async def test_memory_gateways_do_not_share_state() -> None:
    first, second = FakeGateway(), FakeGateway()
    await _charge(first, await _method(first), "k")
    assert len(first.charges) == 1
    assert second.charges == []


def test_webhook_helper_uses_the_default_secret() -> None:
    payload = b'{"id": "evt_9", "type": "invoice.paid", "data": {}}'
    event = FakeGateway().verify_webhook(
        payload=payload, headers={"Fake-Signature": sign_fake_webhook(payload)}
    )
    assert event.id == "evt_9"


async def test_ledger_is_shared_between_instances(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite3")
    writer = FakeGateway(GatewaySettings(fake_ledger_path=path))
    reader = FakeGateway(GatewaySettings(fake_ledger_path=path))
    method = await _method(writer)
    charge = await _charge(writer, method, "inv-1")
    assert await reader.get_charge(charge.reference) == charge
    assert await _charge(reader, method, "inv-1") == charge
    await reader.refund(charge_reference=charge.reference, amount=200, idempotency_key="r")
    assert len(writer.refunds) == 1
    assert ledger_summary(path) == {
        "charges": 1,
        "declines": 0,
        "refunds": 1,
        "calls": 2,
        "distinct_keys": 1,
    }


async def test_ledger_uses_a_unique_key(tmp_path: Path) -> None:
    path = tmp_path / "schema.sqlite3"
    FakeGateway(GatewaySettings(fake_ledger_path=str(path))).summary()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO charges (idempotency_key, reference, request, amount, currency, status) "
            "VALUES ('k', 'pi_1', '[]', 1, 'USD', 'succeeded')"
        )
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO charges (idempotency_key, reference, request, amount, currency, "
                "status) VALUES ('k', 'pi_2', '[]', 1, 'USD', 'succeeded')"
            )


async def test_twenty_concurrent_calls_across_two_instances(tmp_path: Path) -> None:
    settings = GatewaySettings(fake_ledger_path=str(tmp_path / "c.sqlite3"))
    instances = [FakeGateway(settings), FakeGateway(settings)]
    for instance in instances:
        instance.latency_seconds = 0.002
    method = await _method(instances[0])
    results = await asyncio.gather(
        *(_charge(instances[i % 2], method, "one-key") for i in range(20))
    )
    assert len({charge.reference for charge in results}) == 1
    summary = ledger_summary(settings.fake_ledger_path or "")
    assert (summary["charges"], summary["calls"], summary["distinct_keys"]) == (1, 20, 1)


async def test_concurrent_refunds_never_exceed_the_charge(tmp_path: Path) -> None:
    settings = GatewaySettings(fake_ledger_path=str(tmp_path / "r.sqlite3"))
    instances = [FakeGateway(settings), FakeGateway(settings)]
    charge = await _charge(instances[0], await _method(instances[0]), "k", amount=1000)
    outcomes = await asyncio.gather(
        *(
            instances[i % 2].refund(
                charge_reference=charge.reference, amount=300, idempotency_key=f"r-{i}"
            )
            for i in range(10)
        ),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, GatewayDeclined)]
    assert len(refused) == 7
    assert {o.code for o in refused} == {"amount_too_large"}
    assert sum(refund.amount for refund in instances[1].refunds) == 900


RUNNER = """
import asyncio, sys, time
from app.gateways import GatewaySettings
from app.gateways.fake import FakeGateway

async def main(path, method, start):
    gateway = FakeGateway(GatewaySettings(fake_ledger_path=path, fake_latency_seconds=0.001))
    await asyncio.sleep(max(0.0, start - time.time()))
    charges = await asyncio.gather(*(
        gateway.charge(amount=4200, currency="USD", method_reference=method,
                       customer_reference="cus_fake_1", idempotency_key="run-1")
        for _ in range(5)
    ))
    print(",".join(sorted({c.reference for c in charges})))

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


async def test_four_processes_charging_one_key_make_one_charge(tmp_path: Path) -> None:
    path = str(tmp_path / "processes.sqlite3")
    method = await _method(FakeGateway())
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    start = time.time() + 2.0  # every process is up before any charges: maximal overlap
    runners = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RUNNER,
            path,
            method,
            str(start),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    outputs = [await runner.communicate() for runner in runners]
    assert [runner.returncode for runner in runners] == [0] * 4, outputs
    references = {out.decode().strip() for out, _ in outputs}
    assert len(references) == 1
    summary = ledger_summary(path)
    assert (summary["charges"], summary["calls"], summary["distinct_keys"]) == (1, 20, 1)
    assert [c.reference for c in FakeGateway(GatewaySettings(fake_ledger_path=path)).charges] == [
        references.pop()
    ]
