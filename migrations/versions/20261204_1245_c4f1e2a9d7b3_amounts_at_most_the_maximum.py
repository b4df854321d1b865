"""amounts at most the maximum

Every amount (a line, its tax, an invoice's total, a payment, an allocation, a refund, a
scheduled payment, a platform fee, an AutoPay cap) is at most 10^12 minor units and a line's
quantity at most 10^6 (app/core/money.py, docs/api/limits.md): the database holds the limit
too, so no path can store or charge above it. Rows above it (only a bug could have written
them) make the upgrade fail: find them with the same conditions, negated.

Revision ID: c4f1e2a9d7b3
Revises: b8a135d41096
Create Date: 2026-12-04 12:45:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = 'c4f1e2a9d7b3'
down_revision: str | None = 'b8a135d41096'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported: a migration says what it did on the day it was written.
MAX_AMOUNT = 10**12
MAX_QUANTITY = 10**6

CHECKS: dict[str, list[tuple[str, str]]] = {
    'platform_fees': [('amount_at_most_max', f'amount <= {MAX_AMOUNT}')],
    'invoices': [('total_at_most_max', f'total <= {MAX_AMOUNT}')],
    'invoice_lines': [
        ('quantity_at_most_max', f'quantity <= {MAX_QUANTITY}'),
        ('unit_amount_at_most_max', f'unit_amount <= {MAX_AMOUNT}'),
        ('amount_at_most_max', f'amount <= {MAX_AMOUNT}'),
        ('tax_amount_at_most_max', f'tax_amount <= {MAX_AMOUNT}'),
    ],
    'payments': [('amount_at_most_max', f'amount <= {MAX_AMOUNT}')],
    'payment_allocations': [('amount_at_most_max', f'amount <= {MAX_AMOUNT}')],
    'refunds': [('amount_at_most_max', f'amount <= {MAX_AMOUNT}')],
    'scheduled_payments': [('amount_at_most_max', f'amount <= {MAX_AMOUNT}')],
    'autopay_rules': [
        (
            'max_invoice_total_at_most_max',
            f'max_invoice_total IS NULL OR max_invoice_total <= {MAX_AMOUNT}',
        )
    ],
}


def upgrade() -> None:
    # Batch mode: SQLite cannot add a constraint to a table, so the table is copied.
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for name, condition in checks:
                batch.create_check_constraint(op.f(f'ck_{table}_{name}'), condition)


def downgrade() -> None:
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for name, _ in reversed(checks):
                batch.drop_constraint(op.f(f'ck_{table}_{name}'), type_='check')
