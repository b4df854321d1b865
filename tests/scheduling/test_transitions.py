"""A scheduled payment's state machine: every allowed change of status is taken, every other
refused (409) and leaves the row as it was; and nothing outside its service writes the fields
it owns. Runs in a rolled-back transaction: nothing here needs a commit."""

from __future__ import annotations

import ast
import itertools
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli import PROJECT_ROOT
from app.models import Client, Event, Invoice, PaymentMethod, ScheduledPayment, Tenant
from app.scheduled_payments.transitions import (
    STATUSES,
    TRANSITIONS,
    IllegalTransition,
    Status,
    transition,
)

ALL_PAIRS = list(itertools.product(STATUSES, STATUSES))
OWNED_FIELDS = {"status", "version", "attempts", "next_attempt_at", "lease_expires_at"}
# Objects by these names are other things with fields of the same names.
NOT_SCHEDULED_PAYMENTS = {"setting"}  # AutopaySetting.version


async def a_scheduled_payment(session: AsyncSession) -> ScheduledPayment:
    tenant = Tenant(name="Transitions MSP")
    session.add(tenant)
    await session.flush()
    client = Client(tenant_id=tenant.id, name="Client")
    session.add(client)
    await session.flush()
    method = PaymentMethod(
        tenant_id=tenant.id,
        client_id=client.id,
        type="card",
        brand="visa",
        last4="4242",
        fingerprint="fp",
        gateway_reference="pm_1",
    )
    invoice = Invoice(
        tenant_id=tenant.id,
        client_id=client.id,
        status="open",
        currency="USD",
        due_date=date(2026, 12, 31),
        total=1_000,
        amount_paid=0,
        amount_reserved=0,
    )
    session.add_all([method, invoice])
    await session.flush()
    payment = ScheduledPayment(
        tenant_id=tenant.id,
        client_id=client.id,
        invoice_id=invoice.id,
        payment_method_id=method.id,
        amount=1_000,
        currency="USD",
        scheduled_for=date(2026, 12, 30),
        status="scheduled",
        origin="manual",
        attempts=0,
        next_attempt_at=datetime(2026, 12, 30, tzinfo=UTC),
        version=1,
    )
    session.add(payment)
    await session.flush()
    return payment


def test_the_table_speaks_of_known_statuses_only() -> None:
    assert {s for pair in TRANSITIONS for s in pair} <= set(STATUSES)
    finished = {"succeeded", "canceled"}
    assert not [pair for pair in TRANSITIONS if pair[0] in finished], "finished is final"
    # A failed payment only ever comes back through a manual attempt.
    assert [to for (was, to) in TRANSITIONS if was == "failed"] == ["processing"]


@pytest.mark.parametrize(("current", "wanted"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
async def test_every_transition_is_taken_or_refused(
    db_session: AsyncSession, current: Status, wanted: Status
) -> None:
    payment = await a_scheduled_payment(db_session)
    payment.status = current  # the state under test, set up directly
    payment.hold_reason = "disputed" if current == "on_hold" else None
    version = payment.version
    held = {"hold_reason": "disputed"} if wanted == "on_hold" else {}

    if (current, wanted) in TRANSITIONS:
        transition(
            db_session, payment, wanted, event="scheduled_payment.updated", amount=900, **held
        )
        assert (payment.status, payment.version, payment.amount) == (wanted, version + 1, 900)
        await db_session.flush()
        events = await db_session.execute(select(Event).where(Event.subject_id == payment.id))
        (event,) = events.scalars()
        assert (event.type, event.data["status"]) == ("scheduled_payment.updated", wanted)
    else:
        with pytest.raises(IllegalTransition) as refused:
            transition(
                db_session, payment, wanted, event="scheduled_payment.updated", amount=900, **held
            )
        assert refused.value.status == 409
        assert (payment.status, payment.version, payment.amount) == (current, version, 1_000)


def test_only_the_service_writes_what_it_owns() -> None:
    """No module outside app/scheduled_payments/ assigns a scheduled payment's status, version,
    attempts, next attempt or lease; inside it, only `transition` sets status and version (the
    repository's set-based statements are the package's tools, called from nowhere else)."""
    owners = {"app/scheduled_payments/transitions.py", "app/scheduled_payments/repository.py"}
    writers = []
    for path in sorted((PROJECT_ROOT / "app").rglob("*.py")):
        relative = path.relative_to(PROJECT_ROOT).as_posix()
        source = path.read_text()
        inside = relative.startswith("app/scheduled_payments/")
        if relative in owners or ("ScheduledPayment" not in source and not inside):
            continue
        for node in ast.walk(ast.parse(source)):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AugAssign):
                targets = [node.target]
            for target in targets:
                owned = {"status", "version"} if inside else OWNED_FIELDS
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr in owned
                    and not (
                        isinstance(target.value, ast.Name)
                        and target.value.id in NOT_SCHEDULED_PAYMENTS
                    )
                ):
                    writers.append(f"{relative}:{node.lineno} sets .{target.attr}")
    assert writers == []


def test_the_queue_statements_are_called_by_the_service_alone() -> None:
    users = []
    for path in (PROJECT_ROOT / "app").rglob("*.py"):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.Name) and n.id == "ScheduledPaymentQueue" for n in ast.walk(tree)):
            users.append(path.relative_to(PROJECT_ROOT).as_posix())
    assert sorted(users) == ["app/scheduled_payments/attempts.py"]
