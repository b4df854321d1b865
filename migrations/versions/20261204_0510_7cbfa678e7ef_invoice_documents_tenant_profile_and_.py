"""invoice documents: tenant profile and logo, client billing address, line tax

Revision ID: 7cbfa678e7ef
Revises: 4ea9cff81887
Create Date: 2026-12-04 05:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = '7cbfa678e7ef'
down_revision: str | None = '4ea9cff81887'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADDRESS_PARTS = ('line1', 'line2', 'city', 'region', 'postal_code', 'country')


def address_complete(prefix: str) -> str:
    """Absent (every part NULL), or at least the first line and the country."""
    absent = ' AND '.join(f'{prefix}{part} IS NULL' for part in ADDRESS_PARTS)
    return f'({absent}) OR ({prefix}line1 IS NOT NULL AND {prefix}country IS NOT NULL)'


def upgrade() -> None:
    op.create_table('tenant_logos',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('content_type', sa.String(length=16), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('updated_at', app.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("content_type IN ('image/png', 'image/jpeg')", name=op.f('ck_tenant_logos_content_type')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_logos_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_tenant_logos'))
    )
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('billing_address_line1', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('billing_address_line2', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('billing_address_city', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('billing_address_region', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('billing_address_postal_code', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('billing_address_country', sa.String(length=2), nullable=True))
        batch_op.create_check_constraint(op.f('ck_clients_billing_address_complete'), address_complete('billing_address_'))

    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax_amount', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('tax_label', sa.String(length=100), nullable=True))
        batch_op.create_check_constraint(op.f('ck_invoice_lines_tax_amount_not_negative'), 'tax_amount >= 0')

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax_total', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
        batch_op.create_check_constraint(op.f('ck_invoices_tax_within_total'), 'tax_total >= 0 AND tax_total <= total')

    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legal_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('email', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('phone', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('tax_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('address_line1', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('address_line2', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('address_city', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('address_region', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('address_postal_code', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('address_country', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('payment_instructions', sa.Text(), nullable=True))
        batch_op.create_check_constraint(op.f('ck_tenants_address_complete'), address_complete('address_'))



def downgrade() -> None:
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_tenants_address_complete'), type_='check')
        batch_op.drop_column('payment_instructions')
        batch_op.drop_column('address_country')
        batch_op.drop_column('address_postal_code')
        batch_op.drop_column('address_region')
        batch_op.drop_column('address_city')
        batch_op.drop_column('address_line2')
        batch_op.drop_column('address_line1')
        batch_op.drop_column('tax_id')
        batch_op.drop_column('phone')
        batch_op.drop_column('email')
        batch_op.drop_column('legal_name')

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_invoices_tax_within_total'), type_='check')
        batch_op.drop_column('tax_total')

    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_invoice_lines_tax_amount_not_negative'), type_='check')
        batch_op.drop_column('tax_label')
        batch_op.drop_column('tax_amount')

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_clients_billing_address_complete'), type_='check')
        batch_op.drop_column('billing_address_country')
        batch_op.drop_column('billing_address_postal_code')
        batch_op.drop_column('billing_address_region')
        batch_op.drop_column('billing_address_city')
        batch_op.drop_column('billing_address_line2')
        batch_op.drop_column('billing_address_line1')

    op.drop_table('tenant_logos')
