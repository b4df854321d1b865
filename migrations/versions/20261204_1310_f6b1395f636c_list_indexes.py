"""list indexes: every list and filter the API offers keeps its keyset order on an index

Filtered lists (invoices, payments and scheduled payments by status; `?overdue`, which is
status open) and the staff's tenant-wide lists get (tenant, [client,] [status,] created_at, id)
indexes; tickets' open/closed halves get partial indexes; the webhook delivery log by status
and the claim's "no earlier pending delivery" check get (endpoint, status, sequence).

Revision ID: f6b1395f636c
Revises: c4e1a7d2f913
Create Date: 2026-12-04 12:40:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f6b1395f636c'
down_revision: str | None = "c4e1a7d2f913"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLAIN = [
    ('invoices', 'ix_invoices_tenant_created', ['tenant_id', 'created_at', 'id']),
    ('invoices', 'ix_invoices_client_status', ['tenant_id', 'client_id', 'status', 'created_at', 'id']),
    ('invoices', 'ix_invoices_tenant_status', ['tenant_id', 'status', 'created_at', 'id']),
    ('payments', 'ix_payments_tenant_created', ['tenant_id', 'created_at', 'id']),
    ('payments', 'ix_payments_client_status', ['tenant_id', 'client_id', 'status', 'created_at', 'id']),
    ('payments', 'ix_payments_tenant_status', ['tenant_id', 'status', 'created_at', 'id']),
    ('scheduled_payments', 'ix_scheduled_payments_tenant_created', ['tenant_id', 'created_at', 'id']),
    ('scheduled_payments', 'ix_scheduled_payments_client_status', ['tenant_id', 'client_id', 'status', 'created_at', 'id']),
    ('scheduled_payments', 'ix_scheduled_payments_tenant_status', ['tenant_id', 'status', 'created_at', 'id']),
    ('webhook_deliveries', 'ix_webhook_deliveries_endpoint_status', ['endpoint_id', 'status', 'sequence']),
]
TICKETS_PARTIAL = [
    ('ix_tickets_open_tenant', ['tenant_id', 'created_at', 'id'], "status <> 'closed'"),
    ('ix_tickets_open_client', ['tenant_id', 'client_id', 'created_at', 'id'], "status <> 'closed'"),
    ('ix_tickets_closed_tenant', ['tenant_id', 'created_at', 'id'], "status = 'closed'"),
    ('ix_tickets_closed_client', ['tenant_id', 'client_id', 'created_at', 'id'], "status = 'closed'"),
]


def upgrade() -> None:
    for table, name, columns in PLAIN:
        op.create_index(name, table, columns, unique=False)
    for name, columns, predicate in TICKETS_PARTIAL:
        op.create_index(
            name, 'tickets', columns, unique=False,
            sqlite_where=sa.text(predicate), postgresql_where=sa.text(predicate),
        )


def downgrade() -> None:
    for name, _columns, _predicate in reversed(TICKETS_PARTIAL):
        op.drop_index(name, table_name='tickets')
    for table, name, _columns in reversed(PLAIN):
        op.drop_index(name, table_name=table)
