"""Sign-in protection: throttle counters and the TOTP second factor."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAtMixin, IdMixin


class ThrottleCounter(Base):
    """Attempts counted under one key in a fixed window. The key is an HMAC of what it
    counts (an email as typed, an address), never the text itself."""

    __tablename__ = "throttle_counters"
    __table_args__ = (Index(None, "expires_at"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int]
    expires_at: Mapped[datetime]


class TotpCredential(CreatedAtMixin, Base):
    """A person's TOTP secret, AES-GCM encrypted; active once `confirmed_at` is set."""

    __tablename__ = "totp_credentials"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_sealed: Mapped[str] = mapped_column(String(200))
    confirmed_at: Mapped[datetime | None]
    # The time step of the last code accepted: a code is good once, even within its 30 s.
    last_step: Mapped[int | None]


class RecoveryCode(IdMixin, Base):
    """One of ten single-use codes shown once at confirmation, kept as a SHA-256 hash
    (they are random, 50 bits and more, so a fast hash is enough)."""

    __tablename__ = "totp_recovery_codes"
    __table_args__ = (Index(None, "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]
