"""allocations are the truth of what a payment paid: one payment, N invoices

A payment no longer names one invoice; each allocation does, with its place in the payment's
order, its state (held while pending, applied once paid, released when it failed) and what of
it was refunded. Existing pending and failed payments get a held / released allocation for the
invoice they named; succeeded ones keep theirs (applied).

Revision ID: 5a1c0e7d2b90
Revises: 938ed29b1b4f
Create Date: 2026-12-04 04:30:00.000000+00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = '5a1c0e7d2b90'
down_revision: str | None = '938ed29b1b4f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

payments = sa.table(
    'payments',
    sa.column('id', sa.Uuid()),
    sa.column('tenant_id', sa.Uuid()),
    sa.column('invoice_id', sa.Uuid()),
    sa.column('amount', sa.BigInteger()),
    sa.column('amount_refunded', sa.BigInteger()),
    sa.column('status', sa.String()),
    sa.column('created_at', app.models.base.UTCDateTime()),
)
allocations = sa.table(
    'payment_allocations',
    sa.column('id', sa.Uuid()),
    sa.column('tenant_id', sa.Uuid()),
    sa.column('payment_id', sa.Uuid()),
    sa.column('invoice_id', sa.Uuid()),
    sa.column('position', sa.Integer()),
    sa.column('amount', sa.BigInteger()),
    sa.column('status', sa.String()),
    sa.column('amount_refunded', sa.BigInteger()),
    sa.column('created_at', app.models.base.UTCDateTime()),
)


def upgrade() -> None:
    with op.batch_alter_table('payment_allocations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tenant_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('position', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('status', sa.String(length=10), server_default='applied', nullable=False))
        batch_op.add_column(sa.Column('amount_refunded', sa.BigInteger(), server_default='0', nullable=False))

    connection = op.get_bind()
    owner = sa.select(payments.c.tenant_id).where(payments.c.id == allocations.c.payment_id)
    refunded = sa.select(payments.c.amount_refunded).where(payments.c.id == allocations.c.payment_id)
    connection.execute(
        allocations.update().values(
            tenant_id=owner.scalar_subquery(), amount_refunded=refunded.scalar_subquery()
        )
    )
    # Pending and failed payments had no allocation: give each one for the invoice it named.
    unallocated = connection.execute(
        sa.select(
            payments.c.id, payments.c.tenant_id, payments.c.invoice_id, payments.c.amount,
            payments.c.status, payments.c.created_at,
        ).where(
            ~sa.exists().where(allocations.c.payment_id == payments.c.id)
        )
    ).all()
    rows = [
        {
            'id': uuid.uuid4(),
            'tenant_id': row.tenant_id,
            'payment_id': row.id,
            'invoice_id': row.invoice_id,
            'position': 0,
            'amount': row.amount,
            'status': 'held' if row.status == 'pending' else 'released',
            'amount_refunded': 0,
            'created_at': row.created_at,
        }
        for row in unallocated
    ]
    if rows:
        op.bulk_insert(allocations, rows)

    with op.batch_alter_table('payment_allocations', schema=None) as batch_op:
        batch_op.alter_column('tenant_id', existing_type=sa.Uuid(), nullable=False)
        batch_op.alter_column('position', server_default=None)
        batch_op.alter_column('status', server_default=None)
        batch_op.alter_column('amount_refunded', server_default=None)
        batch_op.create_foreign_key(batch_op.f('fk_payment_allocations_tenant_id_tenants'), 'tenants', ['tenant_id'], ['id'], ondelete='CASCADE')
        batch_op.create_unique_constraint(batch_op.f('uq_payment_allocations_payment_id_position'), ['payment_id', 'position'])
        batch_op.create_check_constraint(batch_op.f('ck_payment_allocations_status'), "status IN ('held', 'applied', 'released')")
        batch_op.create_check_constraint(batch_op.f('ck_payment_allocations_refund_bounds'), 'amount_refunded >= 0 AND amount_refunded <= amount')
        batch_op.create_check_constraint(batch_op.f('ck_payment_allocations_refunded_if_applied'), "status = 'applied' OR amount_refunded = 0")

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_invoice_id'))
        batch_op.drop_constraint(batch_op.f('fk_payments_invoice_id_invoices'), type_='foreignkey')
        batch_op.drop_column('invoice_id')


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invoice_id', sa.Uuid(), nullable=True))

    connection = op.get_bind()
    first = sa.select(allocations.c.invoice_id).where(
        allocations.c.payment_id == payments.c.id, allocations.c.position == 0
    )
    connection.execute(payments.update().values(invoice_id=first.scalar_subquery()))
    # Before this revision only a succeeded payment had an allocation, for its one invoice.
    connection.execute(allocations.delete().where(allocations.c.status != 'applied'))

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.alter_column('invoice_id', existing_type=sa.Uuid(), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_payments_invoice_id_invoices'), 'invoices', ['invoice_id'], ['id'], ondelete='RESTRICT')
        batch_op.create_index(batch_op.f('ix_payments_invoice_id'), ['invoice_id'], unique=False)

    with op.batch_alter_table('payment_allocations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_payment_allocations_refunded_if_applied'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_payment_allocations_refund_bounds'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_payment_allocations_status'), type_='check')
        batch_op.drop_constraint(batch_op.f('uq_payment_allocations_payment_id_position'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_payment_allocations_tenant_id_tenants'), type_='foreignkey')
        batch_op.drop_column('amount_refunded')
        batch_op.drop_column('status')
        batch_op.drop_column('position')
        batch_op.drop_column('tenant_id')
