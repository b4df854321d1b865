"""The events/webhooks/scopes migration (b8a135d41096) on real rows: keys made before scopes
keep v1's powers, and events already written are marked handed out (webhooks made later never
receive the history); and back down again."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from alembic import command

from app.cli import alembic_config
from app.core.config import Settings
from tests.core.test_migration_allocations import run

BEFORE = "7cbfa678e7ef"
AFTER = "b8a135d41096"
NOW = datetime(2026, 12, 1, 12, 0)


def test_old_keys_keep_v1s_powers_and_old_events_are_not_sent(
    migrations_settings: Settings,
) -> None:
    config = alembic_config(migrations_settings)
    command.upgrade(config, BEFORE)
    make = (lambda: uuid.uuid4().hex) if migrations_settings.is_sqlite else uuid.uuid4
    k = {"tenant": make(), "key": make(), "event": make(), "subject": make(), "now": NOW}
    run(
        migrations_settings,
        (
            "INSERT INTO tenants (id, name, timezone, next_invoice_number, next_ticket_number,"
            " created_at) VALUES (:tenant, 'T', 'UTC', 1, 1, :now)",
            k,
        ),
        (
            "INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, created_at)"
            " VALUES (:key, :tenant, 'PSA', 'bpk_old', 'h', :now)",
            k,
        ),
        (
            "INSERT INTO events (id, tenant_id, type, subject_type, subject_id, data, created_at)"
            " VALUES (:event, :tenant, 'invoice.created', 'invoice', :subject, '{}', :now)",
            k,
        ),
    )

    command.upgrade(config, AFTER)
    (keys, events) = run(
        migrations_settings,
        ("SELECT scopes FROM api_keys", {}),
        ("SELECT actor_kind, actor_id, dispatched_at, created_at FROM events", {}),
    )
    [(scopes,)] = keys
    if isinstance(scopes, str):
        scopes = json.loads(scopes)
    assert scopes == ["invoices:write", "invoices:read", "payments:read"]
    [(actor_kind, actor_id, dispatched_at, created_at)] = events
    assert (actor_kind, actor_id) == ("system", None)
    assert dispatched_at == created_at

    command.downgrade(config, BEFORE)
    command.upgrade(config, "head")
