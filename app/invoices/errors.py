"""Invoice errors."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound


class InvoiceNotFound(NotFound):
    default_detail = "No such invoice."


class InvoiceStateConflict(Conflict):
    type_slug = "invoice-state-conflict"
    title = "Invoice state conflict"


class ExternalIdConflict(Conflict):
    type_slug = "external-id-conflict"
    title = "External id conflict"
