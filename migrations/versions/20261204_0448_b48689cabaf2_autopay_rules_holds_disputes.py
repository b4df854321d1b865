"""autopay rules, holds, manual attempts, billing disputes

AutoPay's one setting becomes ordered rules: each client's method, categories and days before
due become its first rule (the v1 fields read and write it). Scheduled payments may wait on
hold (an open billing dispute on their invoice), count manual attempts apart from automatic
ones, and name the rule that made them; tickets have a kind.

Revision ID: b48689cabaf2
Revises: 5a1c0e7d2b90
Create Date: 2026-12-04 04:48:41.307748+00:00
"""

from collections.abc import Sequence

import uuid

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = 'b48689cabaf2'
down_revision: str | None = '5a1c0e7d2b90'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


settings = sa.table(
    'autopay_settings',
    sa.column('id', sa.Uuid()),
    sa.column('tenant_id', sa.Uuid()),
    sa.column('payment_method_id', sa.Uuid()),
    sa.column('days_before_due', sa.Integer()),
    sa.column('created_at', app.models.base.UTCDateTime()),
)
old_categories = sa.table(
    'autopay_categories', sa.column('setting_id', sa.Uuid()), sa.column('service_category_id', sa.Uuid())
)
rules = sa.table(
    'autopay_rules',
    sa.column('id', sa.Uuid()),
    sa.column('tenant_id', sa.Uuid()),
    sa.column('setting_id', sa.Uuid()),
    sa.column('position', sa.Integer()),
    sa.column('enabled', sa.Boolean()),
    sa.column('payment_method_id', sa.Uuid()),
    sa.column('run_on', sa.String()),
    sa.column('run_days', sa.Integer()),
    sa.column('max_invoice_total', sa.BigInteger()),
    sa.column('created_at', app.models.base.UTCDateTime()),
)
rule_categories = sa.table(
    'autopay_rule_categories', sa.column('rule_id', sa.Uuid()), sa.column('service_category_id', sa.Uuid())
)
scheduled = sa.table(
    'scheduled_payments',
    sa.column('status', sa.String()),
    sa.column('origin', sa.String()),
    sa.column('client_id', sa.Uuid()),
    sa.column('rule_id', sa.Uuid()),
)
setting_clients = sa.table('autopay_settings', sa.column('id', sa.Uuid()), sa.column('client_id', sa.Uuid()))
SCHEDULED_STATUSES = "status IN ('scheduled', 'processing', 'succeeded', 'failed', 'canceled')"
NEW_SCHEDULED_STATUSES = (
    "status IN ('scheduled', 'processing', 'on_hold', 'succeeded', 'failed', 'canceled')"
)


def upgrade() -> None:
    op.create_table('autopay_rules',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('setting_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('payment_method_id', sa.Uuid(), nullable=False),
    sa.Column('run_on', sa.String(length=20), nullable=False),
    sa.Column('run_days', sa.Integer(), nullable=False),
    sa.Column('max_invoice_total', sa.BigInteger(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("(run_on = 'day_of_month' AND run_days BETWEEN 1 AND 31) OR (run_on <> 'day_of_month' AND run_days BETWEEN 0 AND 60)", name=op.f('ck_autopay_rules_run_days_range')),
    sa.CheckConstraint("run_on IN ('days_before_due', 'days_after_issue', 'day_of_month')", name=op.f('ck_autopay_rules_run_on')),
    sa.CheckConstraint('max_invoice_total IS NULL OR max_invoice_total > 0', name=op.f('ck_autopay_rules_max_invoice_total_positive')),
    sa.ForeignKeyConstraint(['payment_method_id'], ['payment_methods.id'], name=op.f('fk_autopay_rules_payment_method_id_payment_methods'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['setting_id'], ['autopay_settings.id'], name=op.f('fk_autopay_rules_setting_id_autopay_settings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_autopay_rules_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_autopay_rules')),
    sa.UniqueConstraint('setting_id', 'position', name=op.f('uq_autopay_rules_setting_id_position'))
    )
    with op.batch_alter_table('autopay_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_autopay_rules_payment_method_id'), ['payment_method_id'], unique=False)

    op.create_table('autopay_rule_categories',
    sa.Column('rule_id', sa.Uuid(), nullable=False),
    sa.Column('service_category_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['rule_id'], ['autopay_rules.id'], name=op.f('fk_autopay_rule_categories_rule_id_autopay_rules'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_category_id'], ['service_categories.id'], name=op.f('fk_autopay_rule_categories_service_category_id_service_categories'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('rule_id', 'service_category_id', name=op.f('pk_autopay_rule_categories'))
    )

    # Each setting's method, days and categories become its first rule.
    connection = op.get_bind()
    new_rules, new_categories = [], []
    rule_of: dict[object, uuid.UUID] = {}
    for row in connection.execute(sa.select(settings).where(settings.c.payment_method_id.is_not(None))):
        rule_id = uuid.uuid4()
        rule_of[row.id] = rule_id
        new_rules.append({
            'id': rule_id, 'tenant_id': row.tenant_id, 'setting_id': row.id, 'position': 0,
            'enabled': True, 'payment_method_id': row.payment_method_id,
            'run_on': 'days_before_due', 'run_days': row.days_before_due,
            'max_invoice_total': None, 'created_at': row.created_at,
        })
    for row in connection.execute(sa.select(old_categories)):
        if row.setting_id in rule_of:
            new_categories.append(
                {'rule_id': rule_of[row.setting_id], 'service_category_id': row.service_category_id}
            )
    if new_rules:
        op.bulk_insert(rules, new_rules)
    if new_categories:
        op.bulk_insert(rule_categories, new_categories)

    op.drop_table('autopay_categories')
    with op.batch_alter_table('autopay_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.drop_constraint(batch_op.f('ck_autopay_settings_enabled_has_method'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_autopay_settings_days_range'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_autopay_settings_payment_method_id_payment_methods'), type_='foreignkey')
        batch_op.drop_column('days_before_due')
        batch_op.drop_column('payment_method_id')

    with op.batch_alter_table('scheduled_payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manual_attempts', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('resume_status', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('hold_reason', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('rule_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_scheduled_payments_rule_id_autopay_rules'), 'autopay_rules', ['rule_id'], ['id'], ondelete='SET NULL')
        batch_op.drop_constraint(batch_op.f('ck_scheduled_payments_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_scheduled_payments_status'), NEW_SCHEDULED_STATUSES)
        batch_op.create_check_constraint(batch_op.f('ck_scheduled_payments_held_for_a_reason'), "(status = 'on_hold') = (hold_reason IS NOT NULL)")
        batch_op.create_check_constraint(batch_op.f('ck_scheduled_payments_manual_attempts_not_negative'), 'manual_attempts >= 0')

    # AutoPay's payments so far were made by what is now each client's first rule.
    for setting_id, rule_id in rule_of.items():
        client = sa.select(setting_clients.c.client_id).where(setting_clients.c.id == setting_id)
        connection.execute(
            scheduled.update()
            .where(scheduled.c.origin == 'autopay', scheduled.c.client_id == client.scalar_subquery())
            .values(rule_id=rule_id)
        )

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), server_default='support', nullable=False))
        batch_op.create_index('ix_tickets_invoice', ['invoice_id'], unique=False)
        batch_op.create_check_constraint(batch_op.f('ck_tickets_kind'), "kind IN ('support', 'billing_dispute')")
        batch_op.create_check_constraint(batch_op.f('ck_tickets_dispute_invoice'), "kind <> 'billing_dispute' OR invoice_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_tickets_dispute_invoice'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_tickets_kind'), type_='check')
        batch_op.drop_index('ix_tickets_invoice')
        batch_op.drop_column('kind')

    # Before this revision nothing waited on hold: held payments wait as scheduled again.
    op.get_bind().execute(scheduled.update().where(scheduled.c.status == 'on_hold').values(status='scheduled'))
    with op.batch_alter_table('scheduled_payments', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_scheduled_payments_manual_attempts_not_negative'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_scheduled_payments_held_for_a_reason'), type_='check')
        batch_op.drop_constraint(batch_op.f('ck_scheduled_payments_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_scheduled_payments_status'), SCHEDULED_STATUSES)
        batch_op.drop_constraint(batch_op.f('fk_scheduled_payments_rule_id_autopay_rules'), type_='foreignkey')
        batch_op.drop_column('rule_id')
        batch_op.drop_column('hold_reason')
        batch_op.drop_column('resume_status')
        batch_op.drop_column('manual_attempts')

    with op.batch_alter_table('autopay_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_method_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('days_before_due', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_foreign_key(batch_op.f('fk_autopay_settings_payment_method_id_payment_methods'), 'payment_methods', ['payment_method_id'], ['id'], ondelete='RESTRICT')

    op.create_table('autopay_categories',
    sa.Column('setting_id', sa.Uuid(), nullable=False),
    sa.Column('service_category_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['service_category_id'], ['service_categories.id'], name=op.f('fk_autopay_categories_service_category_id_service_categories'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['setting_id'], ['autopay_settings.id'], name=op.f('fk_autopay_categories_setting_id_autopay_settings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('setting_id', 'service_category_id', name=op.f('pk_autopay_categories'))
    )
    # The first rule is what v1 kept; any later rule is lost going back.
    connection = op.get_bind()
    first = {row.setting_id: row for row in connection.execute(sa.select(rules).where(rules.c.position == 0))}
    for setting_id, rule in first.items():
        days = rule.run_days if rule.run_on == 'days_before_due' else 0
        connection.execute(
            settings.update().where(settings.c.id == setting_id)
            .values(payment_method_id=rule.payment_method_id, days_before_due=days)
        )
    categories = [
        {'setting_id': next(s for s, r in first.items() if r.id == row.rule_id), 'service_category_id': row.service_category_id}
        for row in connection.execute(sa.select(rule_categories))
        if any(r.id == row.rule_id for r in first.values())
    ]
    if categories:
        op.bulk_insert(old_categories, categories)
    with op.batch_alter_table('autopay_settings', schema=None) as batch_op:
        batch_op.alter_column('days_before_due', server_default=None)
        batch_op.create_check_constraint(batch_op.f('ck_autopay_settings_days_range'), 'days_before_due >= 0 AND days_before_due <= 60')
        batch_op.create_check_constraint(batch_op.f('ck_autopay_settings_enabled_has_method'), 'NOT enabled OR payment_method_id IS NOT NULL')
        batch_op.drop_column('locked')

    op.drop_table('autopay_rule_categories')
    with op.batch_alter_table('autopay_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_autopay_rules_payment_method_id'))

    op.drop_table('autopay_rules')
