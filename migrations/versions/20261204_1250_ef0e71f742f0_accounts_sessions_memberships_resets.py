"""accounts: server-side sessions, memberships, password resets, one account per tenant

Sessions: every live refresh-token family becomes a session row, so people signed in keep
their sessions (access tokens of families already ended stop working). Memberships: every
client contact becomes a member of the one company they had. Emails become unique per tenant
(an email may have an account in each tenant) instead of across tenants.

Revision ID: ef0e71f742f0
Revises: c41d7a2e9f10
Create Date: 2026-12-04 12:40:00+00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = 'ef0e71f742f0'
down_revision: str | None = "c41d7a2e9f10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

users = sa.table(
    'users',
    sa.column('id', sa.Uuid()),
    sa.column('tenant_id', sa.Uuid()),
    sa.column('client_id', sa.Uuid()),
    sa.column('created_at', app.models.base.UTCDateTime()),
)
refresh_tokens = sa.table(
    'refresh_tokens',
    sa.column('user_id', sa.Uuid()),
    sa.column('family_id', sa.Uuid()),
    sa.column('revoked_at', app.models.base.UTCDateTime()),
    sa.column('created_at', app.models.base.UTCDateTime()),
)
memberships = sa.table(
    'memberships',
    sa.column('id', sa.Uuid()),
    sa.column('tenant_id', sa.Uuid()),
    sa.column('user_id', sa.Uuid()),
    sa.column('client_id', sa.Uuid()),
    sa.column('created_at', app.models.base.UTCDateTime()),
)
auth_sessions = sa.table(
    'auth_sessions',
    sa.column('id', sa.Uuid()),
    sa.column('user_id', sa.Uuid()),
    sa.column('client_id', sa.Uuid()),
    sa.column('created_at', app.models.base.UTCDateTime()),
)


def upgrade() -> None:
    op.create_table('auth_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=True),
    sa.Column('ended_at', app.models.base.UTCDateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.Column('created_at', app.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_auth_sessions_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_auth_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_sessions'))
    )
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_sessions_user_id'), ['user_id', 'ended_at'], unique=False)

    op.create_table('password_reset_tokens',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', app.models.base.UTCDateTime(), nullable=False),
    sa.Column('used_at', app.models.base.UTCDateTime(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint("purpose IN ('password_reset', 'invitation')", name=op.f('ck_password_reset_tokens_purpose')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_reset_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_reset_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_password_reset_tokens_token_hash'))
    )
    with op.batch_alter_table('password_reset_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_reset_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('password_reset_requests',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('occurred_at', app.models.base.UTCDateTime(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_reset_requests'))
    )
    with op.batch_alter_table('password_reset_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_reset_requests_key'), ['key', 'occurred_at'], unique=False)

    op.create_table('memberships',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_memberships_client_id_clients'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_memberships_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memberships_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memberships')),
    sa.UniqueConstraint('user_id', 'client_id', name=op.f('uq_memberships_user_id_client_id'))
    )
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_memberships_client_id'), ['client_id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_email'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_users_tenant_id_email'), ['tenant_id', 'email'])
        batch_op.create_index(batch_op.f('ix_users_email'), ['email'], unique=False)

    connection = op.get_bind()
    contacts = connection.execute(
        sa.select(users.c.id, users.c.tenant_id, users.c.client_id, users.c.created_at)
        .where(users.c.client_id.is_not(None))
    ).all()
    rows = [
        {'id': uuid.uuid4(), 'tenant_id': row.tenant_id, 'user_id': row.id,
         'client_id': row.client_id, 'created_at': row.created_at}
        for row in contacts
    ]
    if rows:
        op.bulk_insert(memberships, rows)

    # Live families become sessions acting for the person's company; ended ones do not, so
    # their access tokens stop working now.
    live = connection.execute(
        sa.select(
            refresh_tokens.c.family_id, refresh_tokens.c.user_id, users.c.client_id,
            sa.func.min(refresh_tokens.c.created_at).label('created_at'),
        )
        .join(users, users.c.id == refresh_tokens.c.user_id)
        .where(refresh_tokens.c.revoked_at.is_(None))
        .group_by(refresh_tokens.c.family_id, refresh_tokens.c.user_id, users.c.client_id)
    ).all()
    sessions = [
        {'id': row.family_id, 'user_id': row.user_id, 'client_id': row.client_id,
         'created_at': row.created_at}
        for row in live
    ]
    if sessions:
        op.bulk_insert(auth_sessions, sessions)


def downgrade() -> None:
    # Going back to one account per email across tenants fails if two tenants share one.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_email'))
        batch_op.drop_constraint(batch_op.f('uq_users_tenant_id_email'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_users_email'), ['email'])

    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_memberships_client_id'))
    op.drop_table('memberships')
    with op.batch_alter_table('password_reset_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_reset_requests_key'))
    op.drop_table('password_reset_requests')
    with op.batch_alter_table('password_reset_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_reset_tokens_user_id'))
    op.drop_table('password_reset_tokens')
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_sessions_user_id'))
    op.drop_table('auth_sessions')
