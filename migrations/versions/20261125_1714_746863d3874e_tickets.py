"""tickets: service tickets and their timeline of updates

Revision ID: 746863d3874e
Revises: 38a7fc1b87ed
Create Date: 2026-11-25 17:14:17.447568+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = '746863d3874e'
down_revision: str | None = '38a7fc1b87ed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('tickets',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('priority', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('invoice_id', sa.Uuid(), nullable=True),
    sa.Column('opened_by_id', sa.Uuid(), nullable=True),
    sa.Column('assignee_id', sa.Uuid(), nullable=True),
    sa.Column('updated_at', app.models.base.UTCDateTime(), nullable=False),
    sa.Column('resolution_notes', sa.Text(), nullable=True),
    sa.Column('closed_at', app.models.base.UTCDateTime(), nullable=True),
    sa.Column('closed_by_id', sa.Uuid(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("(status = 'closed' AND closed_at IS NOT NULL AND resolution_notes IS NOT NULL) OR (status <> 'closed' AND closed_at IS NULL)", name=op.f('ck_tickets_closed_fields')),
    sa.CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name=op.f('ck_tickets_priority')),
    sa.CheckConstraint("status IN ('open', 'in_progress', 'waiting_on_client', 'closed')", name=op.f('ck_tickets_status')),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_tickets_assignee_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_tickets_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_tickets_closed_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['opened_by_id'], ['users.id'], name=op.f('fk_tickets_opened_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tickets_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tickets')),
    sa.UniqueConstraint('tenant_id', 'number', name=op.f('uq_tickets_tenant_id_number'))
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_tenant_client_created', ['tenant_id', 'client_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_tickets_tenant_created', ['tenant_id', 'created_at', 'id'], unique=False)

    op.create_table('ticket_updates',
    sa.Column('ticket_id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_ticket_updates_author_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_ticket_updates_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_updates_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_updates'))
    )
    with op.batch_alter_table('ticket_updates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_updates_ticket_id'), ['ticket_id', 'created_at', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ticket_updates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_updates_ticket_id'))

    op.drop_table('ticket_updates')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_tenant_created')
        batch_op.drop_index('ix_tickets_tenant_client_created')

    op.drop_table('tickets')
