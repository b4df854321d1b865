"""Sessions (refresh-token families)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAtMixin, IdMixin


class RefreshToken(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "refresh_tokens"
    __table_args__ = (Index(None, "user_id", "family_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Every token rotated from one sign-in shares a family; reuse of a spent one ends it all.
    family_id: Mapped[uuid.UUID]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    spent_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuthSession(CreatedAtMixin, Base):
    """One sign-in: the refresh-token family of that id, and every access token minted from
    it (their `sid`). Ending it (`ended_at`) ends all of them at once: the caller lookup joins
    this row, so no token outlives its session."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index(None, "user_id", "ended_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The company a client contact acts for in this session (None for staff). Switching
    # company starts a new session, so this never changes.
    client_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE")
    )
    ended_at: Mapped[datetime | None]
    # Why it ended (logout, password_changed, deactivated, ...): for support, not for logic.
    end_reason: Mapped[str | None] = mapped_column(String(32))


class PasswordResetToken(IdMixin, CreatedAtMixin, Base):
    """A link that lets a person set their password: a self-service reset, or the one an
    invitation carries. Only its SHA-256 is kept; it works once, until `expires_at`."""

    __tablename__ = "password_reset_tokens"
    __table_args__ = (
        Index(None, "user_id"),
        CheckConstraint("purpose IN ('password_reset', 'invitation')", name="purpose"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16), default="password_reset")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class PasswordResetRequest(IdMixin, Base):
    """When a reset was asked for, by (email, address) hashed together: counted to throttle
    requests whether or not the email belongs to anyone, so the throttle reveals nothing."""

    __tablename__ = "password_reset_requests"
    __table_args__ = (Index(None, "key", "occurred_at"),)

    key: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
