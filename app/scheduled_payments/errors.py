"""Scheduled-payment errors."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound


class ScheduledPaymentNotFound(NotFound):
    default_detail = "No such scheduled payment."


class ScheduledPaymentLocked(Conflict):
    type_slug = "scheduled-payment-locked"
    title = "Scheduled payment can no longer change"
