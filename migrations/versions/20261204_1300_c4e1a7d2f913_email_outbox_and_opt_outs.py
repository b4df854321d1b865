"""email outbox and opt-outs

Email messages to send (the outbox) and the kinds each person turned off. Events gain
`emailed_at`, the email fan-out's mark; events already written are marked, so nobody is
mailed the history.

Revision ID: c4e1a7d2f913
Revises: ef0e71f742f0
Create Date: 2026-12-04 13:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "c4e1a7d2f913"
down_revision: str | None = "ef0e71f742f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_messages",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("from_name", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", app.models.base.UTCDateTime(), nullable=True),
        sa.Column("lease_expires_at", app.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("sent_at", app.models.base.UTCDateTime(), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("ck_email_messages_status")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_email_messages_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_email_messages_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_messages")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_email_messages_dedupe_key")),
    )
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_email_messages_due",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index(
            batch_op.f("ix_email_messages_tenant_id"), ["tenant_id", "created_at"], unique=False
        )

    op.create_table(
        "notification_opt_outs",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_opt_outs_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "kind", name=op.f("pk_notification_opt_outs")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("emailed_at", app.models.base.UTCDateTime(), nullable=True))
        batch_op.create_index(
            "ix_events_unemailed",
            ["created_at", "id"],
            unique=False,
            sqlite_where=sa.text("emailed_at IS NULL"),
            postgresql_where=sa.text("emailed_at IS NULL"),
        )

    events = sa.table(
        "events",
        sa.column("emailed_at", app.models.base.UTCDateTime()),
        sa.column("created_at", app.models.base.UTCDateTime()),
    )
    op.execute(events.update().values(emailed_at=events.c.created_at))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_events_unemailed",
            sqlite_where=sa.text("emailed_at IS NULL"),
            postgresql_where=sa.text("emailed_at IS NULL"),
        )
        batch_op.drop_column("emailed_at")
    op.drop_table("notification_opt_outs")
    with op.batch_alter_table("email_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_messages_tenant_id"))
        batch_op.drop_index(
            "ix_email_messages_due",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )
    op.drop_table("email_messages")
